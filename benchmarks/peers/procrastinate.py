"""Procrastinate (asyncio, PostgreSQL): ``Task.defer_async`` / ``batch_defer_async``; a worker
with ``concurrency`` jobs in flight.

Measured on PostgreSQL beside Conveyor's ``postgresql://`` driver, each run in a fresh
database of its own (:mod:`benchmarks.sqlctl`) whose schema is applied before anything
is timed. The worker keeps Procrastinate's defaults (``listen_notify=True``: new jobs
wake it through ``LISTEN``/``NOTIFY``, jobs kept in the table when done) except that its
connection pool is sized to its concurrency (``pool`` setting ``pool=N``: N connections;
the default pool has 4) so that finishing jobs does not queue for a connection.
"""

from __future__ import annotations

import asyncio
import sys
from importlib import metadata
from typing import Any

from benchmarks import sqlctl
from benchmarks.bodies import IO_SECONDS
from benchmarks.framework import RunSpec
from benchmarks.peers._base import ExternalWorker, mark_ready, quiet_logs, run_async
from benchmarks.timing import record

FUNCTIONS = {"noop": "bench_noop", "io": "bench_io", "latency": "bench_noop"}
QUEUE = "bench"


async def noop(i: int) -> None:
    record(i)


async def io(i: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    record(i)


def _conninfo(spec: RunSpec, *, scratch: bool) -> str:
    return sqlctl.url("postgresql", spec.database, scratch=scratch)


def _pool_size(spec: RunSpec) -> int | None:
    if spec.pool.startswith("pool="):
        return int(spec.pool.removeprefix("pool="))
    return None


def make_app(conninfo: str, pool_size: int | None = None) -> Any:
    import procrastinate

    kwargs: dict[str, Any] = {"conninfo": conninfo}
    if pool_size:
        kwargs |= {"min_size": pool_size, "max_size": pool_size}
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(**kwargs))
    app.task(name="bench_noop", queue=QUEUE)(noop)
    app.task(name="bench_io", queue=QUEUE)(io)
    return app


class ProcrastinateProducer:
    bulk = True

    def __init__(self, spec: RunSpec, conninfo: str) -> None:
        self.name = FUNCTIONS[spec.scenario]
        self.app = make_app(conninfo)
        self.task: Any = None

    async def open(self) -> None:
        await self.app.open_async()
        self.task = self.app.tasks[self.name]

    async def send_one(self, i: int) -> None:
        await self.task.defer_async(i=i)

    async def send_many(self, indices: range) -> None:
        await self.task.batch_defer_async(*({"i": i} for i in indices))

    async def close(self) -> None:
        await self.app.close_async()


class ProcrastinateFramework:
    name = "procrastinate"

    def targets(self) -> tuple[str, ...]:
        return ("postgresql",)

    def unavailable(self, target: str) -> str | None:
        if target != "postgresql":
            return "procrastinate is measured on PostgreSQL only"
        try:
            import procrastinate  # noqa: F401
        except ImportError:
            return f"procrastinate is not installed in {sys.prefix}"
        return sqlctl.ping(target)

    def versions(self) -> dict[str, str]:
        out = {"procrastinate python": ".".join(map(str, sys.version_info[:3]))}
        for dist in ("procrastinate", "psycopg", "psycopg-binary", "psycopg-pool", "uvloop"):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return out

    async def prepare(self, spec: RunSpec) -> None:
        """Apply Procrastinate's schema to both of the run's fresh databases."""
        for scratch in (False, True):
            app = make_app(_conninfo(spec, scratch=scratch))
            async with app.open_async():
                await app.schema_manager.apply_schema_async()

    async def before_work(self, spec: RunSpec) -> None:
        """Planner statistics for the freshly filled tables (:mod:`benchmarks.sqlctl`)."""
        import psycopg

        conn = await psycopg.AsyncConnection.connect(
            _conninfo(spec, scratch=False), autocommit=True
        )
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()

    def producer(self, spec: RunSpec, *, scratch: bool) -> ProcrastinateProducer:
        return ProcrastinateProducer(spec, _conninfo(spec, scratch=scratch))

    def worker(self, spec: RunSpec, producer: Any) -> ExternalWorker:
        return ExternalWorker(spec)


def serve(spec: RunSpec, index: int) -> None:
    quiet_logs()

    async def main() -> None:
        app = make_app(_conninfo(spec, scratch=False), _pool_size(spec))
        async with app.open_async():
            mark_ready(spec, index)
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=spec.concurrency,
                wait=True,
                install_signal_handlers=False,
            )

    run_async(spec, main)
