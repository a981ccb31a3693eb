"""What only the SQL drivers promise (PostgreSQL, MySQL/MariaDB), on the real servers.

Schema and migrations (versioned, idempotent, safe from two processes, upgrades from every
earlier version, a one-line error on an unmigrated database), URL options, housekeeping,
and LISTEN/NOTIFY wake-ups. Transactional enqueue, racing worker processes and lost
connections have modules of their own. Each test works in a schema (PostgreSQL) or table
prefix (MySQL) of its own, created and dropped around it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from conveyor import Conveyor, JobStatus, task
from conveyor.drivers import create_driver
from conveyor.drivers._sql import resources
from conveyor.drivers.base import OutcomeKind, SupportsMigrations, SupportsTransactionalEnqueue
from conveyor.exceptions import ConfigurationError, SchemaError
from tests.contract import mysql_server, sql_isolation
from tests.contract.conftest import DRIVERS, MYSQL_FAMILY, DriverSpec, Names, require_service
from tests.contract.helpers import LEASE, done, enqueue, new_job, reserve_one

SQL = [spec for spec in DRIVERS if spec.name in ("postgresql", *MYSQL_FAMILY)]
DIALECT = {"postgresql": "postgresql", **{name: "mysql" for name in MYSQL_FAMILY}}


def only(*names: str) -> pytest.MarkDecorator:
    """Run a test on these servers only (not collected for the others, so not skipped)."""
    specs = [spec for spec in SQL if spec.name in names]
    return pytest.mark.parametrize("sql_spec", specs, ids=[s.name for s in specs], indirect=True)


@pytest.fixture(params=SQL, ids=[spec.name for spec in SQL])
def sql_spec(request: pytest.FixtureRequest, tmp_path: Any) -> DriverSpec:
    spec: DriverSpec = request.param
    require_service(spec.name, spec.broker_url(tmp_path))
    return spec


@pytest.fixture
async def fresh_url(sql_spec: DriverSpec, tmp_path: Any) -> AsyncIterator[str]:
    """A private namespace with nothing in it yet (not migrated)."""
    assert sql_spec.isolate is not None
    isolate: Any = sql_spec.isolate
    async with isolate(sql_spec.broker_url(tmp_path), migrate=False) as url:
        yield url


@pytest.fixture
async def sql_url(sql_spec: DriverSpec, tmp_path: Any) -> AsyncIterator[str]:
    """A private namespace, migrated."""
    isolate: Any = sql_spec.isolate
    async with isolate(sql_spec.broker_url(tmp_path)) as url:
        yield url


def latest(spec: DriverSpec) -> int:
    return resources.raw_migrations(DIALECT[spec.name])[-1][0]


# -- schema and migrations -------------------------------------------------------------


async def test_unmigrated_database_says_run_conveyor_migrate(fresh_url: str) -> None:
    driver = create_driver(fresh_url)
    await driver.connect()  # connecting is fine: `conveyor migrate` connects too
    try:
        assert isinstance(driver, SupportsMigrations)
        assert await driver.schema_version() is None
        for call in (
            driver.enqueue([new_job("q")]),
            driver.reserve(["q"], 1, LEASE, "w"),
            driver.stats(),
        ):
            with pytest.raises(SchemaError) as caught:
                await call
            message = str(caught.value)
            assert "run `conveyor migrate`" in message
            assert "\n" not in message
    finally:
        await driver.close()


async def test_a_worker_on_an_unmigrated_database_stops_with_that_line(fresh_url: str) -> None:
    from conveyor import Conveyor

    app = Conveyor(fresh_url)
    try:
        with pytest.raises(SchemaError, match="run `conveyor migrate`"):
            await asyncio.wait_for(app.worker(queues=("q",)).run(), timeout=30)
    finally:
        await app.close()


async def test_migrate_is_idempotent_and_recorded(fresh_url: str, sql_spec: DriverSpec) -> None:
    driver: Any = create_driver(fresh_url)
    try:
        assert await driver.migrate() == latest(sql_spec)
        assert await driver.migrate() == latest(sql_spec)
        assert await driver.schema_version() == latest(sql_spec)
        (job_id,) = await enqueue(driver, "q")
        assert (await reserve_one(driver, "q")).id == job_id
    finally:
        await driver.close()


_MIGRATE_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from conveyor.drivers import create_driver

    async def main(url):
        sys.stdin.readline()
        driver = create_driver(url)
        print(await driver.migrate(), flush=True)
        await driver.close()

    asyncio.run(main(sys.argv[1]))
    """
)


async def test_two_processes_migrating_at_once(fresh_url: str, sql_spec: DriverSpec) -> None:
    children = [
        subprocess.Popen(  # noqa: ASYNC220 (starting them is quick; waiting is in threads)
            [sys.executable, "-c", _MIGRATE_CHILD, fresh_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for child in children:  # all of them start migrating at the same moment
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [await asyncio.to_thread(child.communicate, timeout=60) for child in children]
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
        assert out.strip() == str(latest(sql_spec))
    driver: Any = create_driver(fresh_url)
    try:
        assert await driver.schema_version() == latest(sql_spec)
    finally:
        await driver.close()


async def _columns(driver: Any) -> list[tuple[Any, ...]]:
    """The shape of the jobs table, as the server describes it."""
    if driver.options.schema is not None:  # PostgreSQL
        sql = (
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position"
        )
        args: Any = (driver.options.schema, driver.options.table_prefix + "jobs")
        rows = await driver._run(lambda conn: conn.fetch(sql, *args))
        return [tuple(r) for r in rows]
    sql = (
        "SELECT column_name, column_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = DATABASE() AND table_name = %s ORDER BY ordinal_position"
    )
    return [tuple(r) for r in await driver._query(sql, (driver.options.table_prefix + "jobs",))]


async def test_upgrades_from_every_earlier_version(sql_spec: DriverSpec, tmp_path: Any) -> None:
    """Each version 0..latest-1 upgrades to a schema equal to a fresh install, and works.

    With one version this is the upgrade from nothing; every new ``schema_vN.sql`` adds a
    starting point here without a change to this test.
    """
    isolate: Any = sql_spec.isolate
    base = sql_spec.broker_url(tmp_path)
    async with isolate(base) as reference_url:
        reference: Any = create_driver(reference_url)
        try:
            expected = await _columns(reference)
        finally:
            await reference.close()
    for start in range(latest(sql_spec)):
        async with isolate(base, migrate=False) as url:
            driver: Any = create_driver(url)
            try:
                assert await driver.migrate_to(start) == start
                assert await driver.schema_version() == (start or None)
                assert await driver.migrate() == latest(sql_spec)
                assert await _columns(driver) == expected
                (job_id,) = await enqueue(driver, "q")
                job = await reserve_one(driver, "q")
                assert job.id == job_id
                assert await driver.complete([done(job, result=b"1", result_ttl=60)]) == [True]
            finally:
                await driver.close()


async def test_cli_migrate_then_check(fresh_url: str) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor", *args, "--url", fresh_url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    def said(result: subprocess.CompletedProcess[str]) -> str:
        return " ".join((result.stdout + result.stderr).split())  # Rich wraps long lines

    checked = cli("check")
    assert checked.returncode != 0
    assert "run conveyor migrate" in said(checked)
    first, second = cli("migrate"), cli("migrate")
    assert first.returncode == 0, first.stderr
    assert "migrated to version" in said(first)
    assert second.returncode == 0, second.stderr
    assert "already at version" in said(second)
    assert cli("check").returncode == 0


@only(*MYSQL_FAMILY)
async def test_the_mysql_driver_knows_which_server_it_is_on(
    sql_spec: DriverSpec, sql_url: str
) -> None:
    """MariaDB on the shared server, MySQL itself on the private ones (``mysql8``, ``mysql9``)."""
    driver: Any = create_driver(sql_url)
    try:
        await driver.connect()
        server = driver.server
        (version,) = await driver._query("SELECT VERSION()")
    finally:
        await driver.close()
    assert server.supported
    assert server.text == version[0]
    assert server.is_mariadb is ("mariadb" in version[0].lower())
    if sql_spec.name == "mysql8":
        assert not server.is_mariadb
        assert server.version[0] == 8
    if sql_spec.name == "mysql9":
        assert not server.is_mariadb
        assert server.version >= (9, 0, 0)


# -- URL options -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["table_prefix=bad-prefix", "pool_size=0", "retention=-1", "retention=soon"],
)
def test_bad_options_are_one_clear_error(sql_spec: DriverSpec, query: str) -> None:
    base = sql_isolation.POSTGRES_URL if sql_spec.name == "postgresql" else sql_isolation.MYSQL_URL
    with pytest.raises(ConfigurationError):
        create_driver(f"{base}?{query}")


def test_mysql_has_no_schemas_and_no_unknown_options() -> None:
    with pytest.raises(ConfigurationError, match="table_prefix"):
        create_driver(f"{sql_isolation.MYSQL_URL}?schema=x")
    with pytest.raises(ConfigurationError, match="unknown option"):
        create_driver(f"{sql_isolation.MYSQL_URL}?sslmod=require")


def test_sql_drivers_have_the_optional_powers(sql_spec: DriverSpec, tmp_path: Any) -> None:
    driver = create_driver(sql_spec.broker_url(tmp_path))
    assert isinstance(driver, SupportsMigrations)
    assert isinstance(driver, SupportsTransactionalEnqueue)


async def test_two_prefixes_in_one_database_are_separate(
    sql_spec: DriverSpec, tmp_path: Any, names: Names
) -> None:
    isolate: Any = sql_spec.isolate
    base = sql_spec.broker_url(tmp_path)
    async with isolate(base) as url_a, isolate(base) as url_b:
        a, b = create_driver(url_a), create_driver(url_b)
        try:
            await enqueue(a, names.queue(), 3)
            assert await b.reserve([names.queue()], 10, LEASE, "w") == []
            assert len(await a.reserve([names.queue()], 10, LEASE, "w")) == 3
        finally:
            await a.close()
            await b.close()


@only(*mysql_server.RELEASES)
async def test_a_user_with_mysqls_default_password_plugin_connects(
    sql_spec: DriverSpec, sql_url: str
) -> None:
    """MySQL 8+ stores passwords with caching_sha2_password; the first login after the
    cache is flushed is a full exchange (RSA over plain TCP), which needs cryptography."""
    parts = urlsplit(sql_url)
    user, password = sql_isolation.private_name(), "pw-" + sql_isolation.private_name()
    admin = await sql_isolation.mysql_connect(sql_url, database=False)
    try:
        async with admin.cursor() as cur:
            await cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
            await cur.execute(f"GRANT ALL ON `{parts.path.lstrip('/')}`.* TO '{user}'@'%'")
            await cur.execute("FLUSH PRIVILEGES")  # empties the cache: a full exchange
            await cur.execute("SELECT plugin FROM mysql.user WHERE user = %s", (user,))
            assert await cur.fetchall() == (("caching_sha2_password",),)
        netloc = f"{user}:{password}@{parts.hostname}:{parts.port}"
        driver: Any = create_driver(urlunsplit(parts._replace(netloc=netloc)))
        try:
            (job_id,) = await enqueue(driver, "q")
            assert (await reserve_one(driver, "q")).id == job_id
        finally:
            await driver.close()
    finally:
        async with admin.cursor() as cur:
            await cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        admin.close()


@only(*MYSQL_FAMILY)
async def test_a_latin1_database_takes_any_queue_name_and_error_text(
    sql_spec: DriverSpec, tmp_path: Any
) -> None:
    """The tables are utf8mb4 whatever the database's default; so are the procedures'
    parameters and variables (a latin1 database has its own, test-private, database)."""

    from conveyor.core.job import ErrorInfo

    base = sql_spec.broker_url(tmp_path)
    parts = urlsplit(base)
    database = sql_isolation.private_name()
    admin = await sql_isolation.mysql_connect(base, database=False)
    try:
        async with admin.cursor() as cur:
            await cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET latin1")
        driver: Any = create_driver(urlunsplit(parts._replace(path=f"/{database}", query="")))
        try:
            await driver.migrate()
            queue = "队列-é"
            (job_id,) = await enqueue(driver, queue)
            job = await reserve_one(driver, queue)
            error = ErrorInfo("Fehler", "kaputt: 失败 ☃", "Traceback ☃")
            assert await driver.complete([done(job, OutcomeKind.RETRY, error=error)]) == [True]
            info = await driver.get_job(job_id)
            assert (info.queue, info.error) == (queue, error)
            job = await reserve_one(driver, queue)
            assert await driver.complete([done(job, result=b"ok", result_ttl=60)]) == [True]
        finally:
            await driver.close()
    finally:
        async with admin.cursor() as cur:
            await cur.execute(f"DROP DATABASE IF EXISTS `{database}`")  # this test's own
        admin.close()


# -- housekeeping ----------------------------------------------------------------------


async def _rows(driver: Any) -> int:
    jobs = driver._names["jobs"]
    if driver.options.schema is not None:
        count: int = await driver._run(lambda conn: conn.fetchval(f"SELECT count(*) FROM {jobs}"))
        return count
    rows = await driver._query(f"SELECT COUNT(*) FROM {jobs}")
    return int(rows[0][0])


async def test_expired_results_and_cancelled_jobs_are_pruned(sql_url: str) -> None:
    url = sql_isolation.with_option(sql_url, "retention", "0.2")
    driver: Any = create_driver(url)
    try:
        ids = await enqueue(driver, "q", 3)
        kept, short = await driver.reserve(["q"], 2, LEASE, "w")
        await driver.complete(
            [done(kept, result=b"k", result_ttl=60), done(short, result=b"s", result_ttl=0.2)]
        )
        assert await driver.cancel(ids[2])
        assert await _rows(driver) == 3
        assert await driver.prune() == 0  # nothing has expired yet
        await asyncio.sleep(0.3)
        assert await driver.prune() == 2
        assert await _rows(driver) == 1
        assert (await driver.get_job(kept.id)).status is JobStatus.SUCCEEDED
    finally:
        await driver.close()


async def test_workers_prune_in_the_background(sql_url: str) -> None:
    """A worker's reserve starts the pruner; closing stops it wherever it is (see
    test_sql_pruning.py for a close while a batch waits on the server)."""
    driver: Any = create_driver(sql_url)
    try:
        driver._pruner.interval = 0.05
        driver._pruner.batch = 2  # several small batches
        await enqueue(driver, "q", 5)
        jobs = await driver.reserve(["q"], 5, LEASE, "w")  # a worker's reserve starts it
        await driver.complete([done(j, result=b"", result_ttl=0.05) for j in jobs])
        async with asyncio.timeout(20):  # generous: other suites may load the server
            # the count, too: other sessions see a commit before its client hears of it
            while await _rows(driver) or driver._pruner.deleted < 5:
                await asyncio.sleep(0.05)
        assert driver._pruner.deleted == 5
    finally:
        async with asyncio.timeout(10):
            await driver.close()


async def test_dead_letters_are_never_pruned(sql_url: str) -> None:
    driver: Any = create_driver(sql_url)
    try:
        await enqueue(driver, "q")
        job = await reserve_one(driver, "q")
        await driver.complete([done(job, OutcomeKind.DEAD)])
        assert await driver.prune() == 0
        assert [i.id for i in await driver.list_jobs(JobStatus.DEAD, "q")] == [job.id]
    finally:
        await driver.close()


# -- wake-ups ----------------------------------------------------------------------------


@task
async def sql_wake_probe(sent: float) -> float:
    return time.time() - sent


@only("postgresql")
async def test_postgres_notify_starts_a_job_at_once_and_idle_workers_rarely_ask(
    sql_url: str, names: Names, sql_spec: DriverSpec
) -> None:
    worker_app = Conveyor(sql_url, default_queue=names.queue())
    producer = Conveyor(sql_url, default_queue=names.queue())
    driver: Any = worker_app.driver
    calls = 0
    run = driver._run

    async def counting(op: Any) -> Any:
        nonlocal calls
        calls += 1
        return await run(op)

    driver._run = counting
    await worker_app.connect()
    worker = worker_app.worker(idle_poll_max=0.25)
    running = asyncio.create_task(worker.run())
    try:
        async with asyncio.timeout(5):
            while not driver._tracker.trusted:  # the worker is listening
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        calls = 0
        await asyncio.sleep(2.0)
        idle_calls = calls
        latencies = []
        for _ in range(5):
            handle = await sql_wake_probe(sent=time.time()).using(producer).dispatch()
            latencies.append(await handle.result(timeout=5))
        # about one query per second while idle (a safety net), not one per poll
        assert idle_calls <= 4, idle_calls
        # typically a few milliseconds; the bound leaves room for a loaded CI machine
        assert sorted(latencies)[2] < 0.25, latencies
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
        await producer.close()
        await worker_app.close()


async def test_concurrent_dispatches_share_inserts(sql_url: str) -> None:
    """100 coroutines dispatching one job each: every job stored, in far fewer INSERTs."""
    driver: Any = create_driver(sql_url)
    try:
        jobs = [new_job("shared") for _ in range(100)]
        await asyncio.gather(*(driver.enqueue([job]) for job in jobs))
        assert driver._coalescer.writes < 50
        got = await driver.reserve(["shared"], 200, LEASE, "w")
        assert sorted(j.id for j in got) == sorted(job.id for job in jobs)
    finally:
        await driver.close()
