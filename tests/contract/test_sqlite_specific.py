"""What only the SQLite driver promises: several processes on one file, transactional
enqueue on the user's aiosqlite connection, URLs, migrations and its errors."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from conveyor.core.job import JobStatus
from conveyor.drivers import create_driver
from conveyor.drivers.base import SupportsMigrations, SupportsTransactionalEnqueue
from conveyor.drivers.sqlite import SqliteDriver
from conveyor.exceptions import (
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    DispatchError,
    SchemaError,
)
from tests.contract.helpers import LEASE, done, enqueue, new_job, reserve_one, stats_for

QUEUE = "sqlite-specific"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "conveyor.db"


@pytest.fixture
async def sqlite_driver(db_path: Path) -> AsyncIterator[SqliteDriver]:
    driver = SqliteDriver(str(db_path))
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()


# -- several processes on one file ----------------------------------------------------

# Each child connects, says "ready", waits for "go" on stdin, runs its part and prints
# one JSON line.
_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from conveyor.drivers import create_driver
    from conveyor.drivers.base import NewJob, Outcome, OutcomeKind

    async def main(url, mode, name):
        if mode == "migrate":
            sys.stdin.readline()
        driver = create_driver(url)
        await driver.connect()
        if mode == "migrate":
            jobs = [NewJob(f"{name}-{i}", "t", "q", b"") for i in range(10)]
            await driver.enqueue(jobs)
            print(json.dumps(await driver.schema_version()), flush=True)
        else:
            print("ready", flush=True)
            sys.stdin.readline()
            got = []
            while batch := await driver.reserve(["q"], 5, 30.0, name):
                got.extend(job.id for job in batch)
                await driver.complete(
                    [Outcome(j.id, j.token, OutcomeKind.SUCCEEDED) for j in batch]
                )
            print(json.dumps(got), flush=True)
        await driver.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def _spawn(url: str, mode: str, name: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, url, mode, name],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out.strip().splitlines()[-1]


@pytest.mark.slow
def test_processes_reserving_from_one_file_never_share_a_job(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    expected = [f"job-{i}" for i in range(3000)]

    async def setup() -> None:
        driver = create_driver(url)
        await driver.connect()
        from conveyor.drivers.base import NewJob

        await driver.enqueue([NewJob(i, "t", "q", b"") for i in expected])
        await driver.close()

    asyncio.run(setup())
    procs = [_spawn(url, "reserve", f"p{i}") for i in range(3)]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(_finish(proc)) for proc in procs]

    everything = [job_id for got in results for job_id in got]
    assert len(everything) == len(set(everything)), "a job was reserved twice"
    assert sorted(everything) == sorted(expected)


@pytest.mark.slow
def test_processes_creating_the_schema_at_once(db_path: Path) -> None:
    url = f"sqlite:///{db_path}"
    procs = [_spawn(url, "migrate", f"p{i}") for i in range(4)]
    time.sleep(0.3)  # let every child import and sit at the start line
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    assert [json.loads(_finish(proc)) for proc in procs] == [1, 1, 1, 1]

    async def check() -> None:
        driver = create_driver(url)
        await driver.connect()
        assert (await stats_for(driver, "q"))[JobStatus.QUEUED] == 40
        await driver.close()

    asyncio.run(check())


async def test_another_connection_wakes_a_waiter(
    sqlite_driver: SqliteDriver, db_path: Path
) -> None:
    other = SqliteDriver(str(db_path))
    await other.connect()
    try:
        waiter = asyncio.create_task(sqlite_driver.wait_for_work([QUEUE], 10.0))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await enqueue(other, QUEUE)
        await asyncio.wait_for(waiter, 1.5)
    finally:
        await other.close()


async def test_waiter_sees_a_lease_expire_in_another_process(
    sqlite_driver: SqliteDriver, db_path: Path
) -> None:
    other = SqliteDriver(str(db_path))
    await other.connect()
    try:
        (job_id,) = await enqueue(other, QUEUE)
        await reserve_one(other, QUEUE, lease=0.2)
        start = time.monotonic()
        await asyncio.wait_for(sqlite_driver.wait_for_work([QUEUE], 10.0), 2.0)
        assert time.monotonic() - start < 1.0
        (job,) = await sqlite_driver.reserve([QUEUE], 1, LEASE, "w2")
        assert (job.id, job.attempts, job.deaths) == (job_id, 2, 1)
    finally:
        await other.close()


# -- transactional enqueue ----------------------------------------------------------------


async def test_enqueue_in_a_rolled_back_transaction_never_exists(
    sqlite_driver: SqliteDriver, db_path: Path
) -> None:
    job = new_job(QUEUE)
    async with aiosqlite.connect(db_path) as conn:
        await sqlite_driver.enqueue_in(conn, [job])
        assert await sqlite_driver.get_job(job.id) is None
        await conn.rollback()
    assert await sqlite_driver.get_job(job.id) is None
    assert await sqlite_driver.reserve([QUEUE], 1, LEASE, "w1") == []


async def test_enqueue_in_a_committed_transaction(
    sqlite_driver: SqliteDriver, db_path: Path
) -> None:
    job = new_job(QUEUE, priority=2)
    async with aiosqlite.connect(db_path) as conn:
        await conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        await conn.execute("INSERT INTO orders (id) VALUES (1)")
        await sqlite_driver.enqueue_in(conn, [job])
        assert await sqlite_driver.get_job(job.id) is None  # invisible before commit
        await conn.commit()
    info = await sqlite_driver.get_job(job.id)
    assert info is not None
    assert (info.status, info.priority) == (JobStatus.QUEUED, 2)
    got = await reserve_one(sqlite_driver, QUEUE)
    assert got.id == job.id


async def test_enqueue_in_needs_an_aiosqlite_connection(
    sqlite_driver: SqliteDriver, db_path: Path
) -> None:
    plain = sqlite3.connect(db_path)
    try:
        with pytest.raises(ConfigurationError, match="aiosqlite"):
            await sqlite_driver.enqueue_in(plain, [new_job(QUEUE)])
    finally:
        plain.close()


# -- URLs, schema, errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///conveyor.db", "conveyor.db"),
        ("sqlite:///data/jobs.db", "data/jobs.db"),
        ("sqlite:////tmp/x.db", "/tmp/x.db"),
        ("sqlite:///my%20jobs.db", "my jobs.db"),
        ("sqlite://:memory:", ":memory:"),
    ],
)
def test_url(url: str, path: str) -> None:
    driver = create_driver(url, clock=object())
    assert isinstance(driver, SqliteDriver)
    assert driver.path == path


def test_url_options() -> None:
    driver = create_driver("sqlite:///x.db?busy_timeout=2.5")
    assert isinstance(driver, SqliteDriver)
    assert driver.busy_timeout == 2.5
    for bad in ("sqlite://host/x.db", "sqlite://", "sqlite:///x.db?colour=red"):
        with pytest.raises(ConfigurationError):
            create_driver(bad)


async def test_missing_directory_is_unavailable(tmp_path: Path) -> None:
    driver = create_driver(f"sqlite:///{tmp_path / 'nope' / 'x.db'}")
    with pytest.raises(BrokerUnavailableError, match="does not exist"):
        await driver.connect()
    await driver.close()


async def test_not_a_database_is_a_broker_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.db"
    path.write_bytes(b"this is not a database, just some bytes" * 100)
    driver = create_driver(f"sqlite:///{path}")
    with pytest.raises(BrokerError) as caught:
        await driver.connect()
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


async def test_memory_database(tmp_path: Path) -> None:
    driver = create_driver("sqlite://:memory:")
    await driver.connect()
    try:
        await enqueue(driver, QUEUE)
        job = await reserve_one(driver, QUEUE)
        assert await driver.complete([done(job)]) == [True]
    finally:
        await driver.close()


async def test_migrations(sqlite_driver: SqliteDriver, db_path: Path) -> None:
    assert isinstance(sqlite_driver, SupportsMigrations)
    assert isinstance(sqlite_driver, SupportsTransactionalEnqueue)
    assert await sqlite_driver.schema_version() == 1
    assert await sqlite_driver.migrate() == 1
    assert await sqlite_driver.migrate() == 1

    with sqlite3.connect(db_path) as conn:
        conn.execute("UPDATE conveyor_meta SET value = '99' WHERE key = 'schema_version'")
    newer = SqliteDriver(str(db_path))
    with pytest.raises(SchemaError, match="newer"):
        await newer.connect()
    await newer.close()


async def test_schema_version_of_an_empty_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    driver = SqliteDriver(str(path))
    await driver.connect()  # creates the schema
    try:
        assert await driver.schema_version() == 1
        assert {row[0] for row in await _tables(path)} >= {"conveyor_jobs", "conveyor_meta"}
    finally:
        await driver.close()


async def _tables(path: Path) -> list[tuple[str]]:
    async with aiosqlite.connect(path) as conn:
        cursor = await conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [tuple(row) for row in await cursor.fetchall()]


async def test_priority_out_of_range_is_refused(sqlite_driver: SqliteDriver) -> None:
    with pytest.raises(DispatchError, match="priority"):
        await sqlite_driver.enqueue([new_job(QUEUE, priority=10)])


async def test_duplicate_id_fails_the_whole_batch(sqlite_driver: SqliteDriver) -> None:
    first = new_job(QUEUE)
    await sqlite_driver.enqueue([first])
    fresh = new_job(QUEUE)
    with pytest.raises(BrokerError):
        await sqlite_driver.enqueue([fresh, first])
    assert await sqlite_driver.get_job(fresh.id) is None


async def test_expired_results_are_pruned(sqlite_driver: SqliteDriver, db_path: Path) -> None:
    await enqueue(sqlite_driver, QUEUE, 3)
    jobs = await sqlite_driver.reserve([QUEUE], 3, LEASE, "w1")
    await sqlite_driver.complete([done(j, result=b"r", result_ttl=0.05) for j in jobs])
    await asyncio.sleep(0.1)
    sqlite_driver._next_prune = 0.0  # don't wait out the prune throttle
    await sqlite_driver.reserve([QUEUE], 1, LEASE, "w1")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT count(*) FROM conveyor_jobs").fetchone() == (0,)
