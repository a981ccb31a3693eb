"""Worker processes on the SQL servers, as users run them: several racing on one database,
one killed mid-run, connections terminated under them, the server restarted under them.

Each test works in a schema (PostgreSQL) or table prefix (MySQL) of its own on the shared
servers, except the restart test, which starts a private server of each kind in a
temporary directory on a free port (the shared ones are never stopped).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor
from tests.contract import mysql_server, sql_isolation
from tests.contract.conftest import require_service
from tests.integration import tasks_cli
from tests.integration.helpers import TASKS, Running, dispatch, records, wait_until

pytestmark = pytest.mark.slow

SERVERS = {"postgresql": sql_isolation.POSTGRES_URL, "mysql": sql_isolation.MYSQL_URL}
ENV = {"postgresql": "CONVEYOR_TEST_POSTGRES_URL", "mysql": "CONVEYOR_TEST_MYSQL_URL"}
#: MySQL itself (mysql8, mysql9) beside MariaDB: private servers, see
#: tests/contract/mysql_server.py
KINDS = sorted([*SERVERS, *mysql_server.RELEASES])
Start = Callable[..., Running]


def _base(name: str) -> str:
    if name in mysql_server.RELEASES:
        return mysql_server.shared_url(name)
    url = os.environ.get(ENV[name]) or SERVERS[name]
    require_service(name, url)
    return url


@pytest.fixture(params=KINDS)
def sql_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A private, migrated namespace on the shared server (set up and dropped with its own
    event loop, so that sync tests can drive processes)."""
    name: str = request.param
    base, private = _base(name), sql_isolation.private_name()
    if name == "postgresql":
        url = sql_isolation.with_option(base, "schema", private)
        drop = sql_isolation.drop_postgres_schema(base, private)
    else:
        url = sql_isolation.with_option(base, "table_prefix", private + "_")
        drop = sql_isolation.drop_mysql_prefix(base, private + "_")
    try:
        asyncio.run(sql_isolation.migrated(url))
        yield url
    finally:
        asyncio.run(drop)


def _keys(path: Path, kind: str) -> list[str]:
    return [r[1] for r in records(path) if r[0] == kind]


# -- racing and killed workers -----------------------------------------------------------


def test_racing_worker_processes_never_run_a_job_twice(
    tmp_path: Path, sql_url: str, start: Start
) -> None:
    out = tmp_path / "record.txt"
    keys = [str(i) for i in range(400)]
    workers = [
        start("worker", TASKS, "--url", sql_url, "--concurrency", "8", name=f"w{i}")
        for i in range(3)
    ]
    for worker in workers:  # all of them waiting before the first job exists
        worker.wait_for_output("worker.online", timeout=60)
    dispatch(sql_url, [tasks_cli.record(path=str(out), key=k, seconds=0.01) for k in keys])
    wait_until(lambda: len(_keys(out, "done")) >= len(keys), 90, "every job to be done")
    for worker in workers:
        worker.signal(signal.SIGTERM)
    for worker in workers:
        assert worker.wait(30) == 0, worker.output()
    done = _keys(out, "done")
    assert sorted(done, key=int) == keys  # every job ran, and none twice
    assert sorted(_keys(out, "start"), key=int) == keys
    pids = collections.Counter(r[3] for r in records(out) if r[0] == "done")
    assert len(pids) >= 2, f"the workers did not race: {pids}"


def test_jobs_of_a_killed_worker_are_redelivered(
    tmp_path: Path, sql_url: str, start: Start
) -> None:
    out = tmp_path / "record.txt"
    keys = [str(i) for i in range(40)]
    env = {"CONVEYOR_LEASE_SECONDS": "1"}
    doomed = start("worker", TASKS, "--url", sql_url, "--concurrency", "10",
                   "--log-level", "warning", env=env, name="doomed")  # fmt: skip
    dispatch(sql_url, [tasks_cli.record(path=str(out), key=k, seconds=0.3) for k in keys])
    wait_until(lambda: len(_keys(out, "start")) >= 5, 20, "the first worker to start jobs")
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.wait(10)
    held = set(_keys(out, "start")) - set(_keys(out, "done"))
    assert held, "the worker was killed with nothing running"
    survivor = start("worker", TASKS, "--url", sql_url, "--concurrency", "20",
                     "--log-level", "warning", env=env, name="survivor")  # fmt: skip
    wait_until(lambda: set(_keys(out, "done")) >= set(keys), 60, "every job to be done")
    survivor.signal(signal.SIGTERM)
    assert survivor.wait(30) == 0
    again = collections.Counter(_keys(out, "start"))
    # at least once: only what the dead worker held ran twice
    assert {k for k, n in again.items() if n > 1} <= held


# -- terminated connections ----------------------------------------------------------------


async def _kill_connections(url: str, driver: Any) -> int:
    """Terminate every server connection of ``driver`` (and its listener), from outside."""
    if url.startswith("postgres"):
        import asyncpg

        name = driver.options.url.split("application_name=")[1].split("&")[0]
        admin = await asyncpg.connect(sql_isolation.POSTGRES_URL)
        try:
            rows = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await admin.close()
        return len(rows)
    import asyncmy

    pool = driver._pool
    ids = [c.thread_id() for c in [*pool._free, *pool._used]]
    port = driver._connect_args["port"]
    admin = await asyncmy.connect(host="127.0.0.1", port=port, user="root", db="test")
    try:
        async with admin.cursor() as cur:
            for thread in ids:
                with contextlib.suppress(Exception):
                    await cur.execute(f"KILL CONNECTION {int(thread)}")
    finally:
        admin.close()
    return len(ids)


@contextlib.asynccontextmanager
async def running_worker(url: str, queue: str) -> AsyncIterator[Conveyor]:
    app = Conveyor(url, default_queue=queue, lease_seconds=5.0, idle_poll_max=0.05)
    await app.connect()
    worker = app.worker(concurrency=20)
    task = asyncio.create_task(worker.run())
    try:
        yield app
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)
        await app.close()


async def _stream(app: Conveyor, path: Path, first: int, count: int) -> list[str]:
    handles = []
    for i in range(first, first + count):
        handles.append(await tasks_cli.record(path=str(path), key=str(i)).using(app).dispatch())
        await asyncio.sleep(0.002)
    return [h.id for h in handles]


async def test_workers_carry_on_when_their_connections_are_terminated(
    tmp_path: Path, sql_url: str
) -> None:
    url = sql_url
    if url.startswith("postgres"):
        url = sql_isolation.with_option(url, "application_name", f"cv{os.getpid()}{id(url)}")
    out = tmp_path / "record.txt"
    producer = Conveyor(url, default_queue="kill")
    try:
        async with running_worker(url, "kill") as app:
            await _stream(producer, out, 0, 50)
            for _ in range(3):  # again and again, mid-run
                assert await _kill_connections(url, app.driver) >= 1
                await _stream(producer, out, 1000 + len(records(out)), 30)
            async with asyncio.timeout(30):
                while len(set(_keys(out, "done"))) < 140:
                    await asyncio.sleep(0.05)
    finally:
        await producer.close()
    assert len(set(_keys(out, "done"))) == 140  # nothing committed was lost


# -- a server restarted mid-run ------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PrivateServer:
    """A throwaway PostgreSQL or MariaDB server in a temporary directory."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.dir = Path(tempfile.mkdtemp(prefix=f"conveyor-{kind}-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        user = "postgres" if kind == "postgresql" else "mysql"
        shutil.chown(self.dir, user)
        self._as = ["runuser", "-u", user, "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        if self.kind == "postgresql":
            return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return f"mysql://root@127.0.0.1:{self.port}/conveyor"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as, *args], check=True, capture_output=True, timeout=60)

    def install(self) -> None:
        if self.kind == "postgresql":
            self._run(_pg("initdb"), "-D", str(self.dir / "data"), "-A", "trust",
                      "-U", "postgres", "--no-sync")  # fmt: skip
        else:
            self._run("mariadb-install-db", "--no-defaults", f"--datadir={self.dir / 'data'}",
                      "--auth-root-authentication-method=normal", "--skip-test-db")  # fmt: skip

    def start(self) -> None:
        if self.kind == "postgresql":
            options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
            self._run(_pg("pg_ctl"), "-D", str(self.dir / "data"), "-o", options,
                      "-l", str(self.dir / "log"), "-w", "start")  # fmt: skip
            return
        self.proc = subprocess.Popen(
            [*self._as, "mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}",
             f"--socket={self.dir / 'sock'}", f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--pid-file={self.dir / 'pid'}", "--innodb-buffer-pool-size=32M",
             f"--log-error={self.dir / 'err.log'}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._accepts, 30, "the private MariaDB server to start")
        subprocess.run(["mariadb", "-h127.0.0.1", f"-P{self.port}", "-uroot",
                        "-e", "CREATE DATABASE IF NOT EXISTS conveyor"], check=True)  # fmt: skip

    def _accepts(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.kind == "postgresql":
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run(_pg("pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
            return
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(30)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg(tool: str) -> str:
    return f"/usr/lib/postgresql/15/bin/{tool}"


def _can_run(kind: str) -> bool:
    if kind == "postgresql":
        return Path(_pg("initdb")).exists()
    return shutil.which("mariadb-install-db") is not None and shutil.which("mariadbd") is not None


@pytest.mark.parametrize("kind", KINDS)
async def test_workers_carry_on_across_a_database_restart(tmp_path: Path, kind: str) -> None:
    server: PrivateServer | mysql_server.MySQLServer
    if kind in mysql_server.RELEASES:
        command = mysql_server.find_mysqld(kind)
        if command is None:
            mysql_server.no_server(kind)
        server = mysql_server.MySQLServer(command, name=kind)
    elif not _can_run(kind):
        pytest.skip(f"no {kind} server binaries to start a private server")
    else:
        server = PrivateServer(kind)
    try:
        await asyncio.to_thread(server.install)
        await asyncio.to_thread(server.start)
        await sql_isolation.migrated(server.url)
        out = tmp_path / "record.txt"
        producer = Conveyor(server.url, default_queue="restart")
        try:
            async with running_worker(server.url, "restart") as _:
                await _stream(producer, out, 0, 30)
                async with asyncio.timeout(30):
                    while len(set(_keys(out, "done"))) < 30:
                        await asyncio.sleep(0.05)
                await asyncio.to_thread(server.stop)
                await asyncio.sleep(0.5)  # the worker finds the server gone, and backs off
                await asyncio.to_thread(server.start)
                started = time.monotonic()
                async with asyncio.timeout(60):
                    await _stream(producer, out, 100, 30)
                    while len(set(_keys(out, "done"))) < 60:
                        await asyncio.sleep(0.05)
                assert time.monotonic() - started < 30
        finally:
            await producer.close()
    finally:
        await asyncio.to_thread(server.remove)
    assert len(set(_keys(out, "done"))) == 60
