"""Conveyor as a :class:`~benchmarks.framework.Framework`: one target per driver."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

import conveyor
from benchmarks import redisctl, sqlctl
from benchmarks.framework import RunSpec
from conveyor import Conveyor
from conveyor.drivers import create_driver
from conveyor.exceptions import ConfigurationError
from conveyor.worker import Worker

TARGETS = ("memory", "sqlite", "redis", "postgresql", "mysql")
#: the targets whose schema is created per run (in the run's own databases)
SQL_TARGETS = ("postgresql", "mysql")


def url_for(target: str, workdir: str, name: str, database: str = "") -> str:
    """A fresh broker per run: memory:// is per-process; sqlite gets a new file."""
    if target == "memory":
        return "memory://"
    if target == "sqlite":
        return f"sqlite:///{Path(workdir, name + '.db')}"
    if target == "redis":  # the benchmark's own database (flushed between runs)
        return redisctl.scratch_url() if name == "scratch" else redisctl.url()
    if target in SQL_TARGETS:  # the run's own databases, created and dropped by the harness
        return sqlctl.url(target, database or sqlctl.PREFIX + "probe", scratch=name == "scratch")
    raise ValueError(f"unknown Conveyor target {target!r}")


class ConveyorProducer:
    def __init__(self, spec: RunSpec, url: str) -> None:
        from benchmarks.tasks import TASKS

        self.url = url
        self.task = TASKS[spec.scenario]
        self.app: Conveyor | None = None

    async def open(self) -> None:
        # init() also makes it the default app, which `await task(i).dispatch()` uses
        self.app = conveyor.init(self.url)
        await self.app.connect()

    async def send_many(self, indices: range) -> None:
        assert self.app is not None
        task = self.task
        await self.app.dispatch_many([task(i) for i in indices])

    async def send_one(self, i: int) -> None:
        await self.task(i).dispatch()

    async def close(self) -> None:
        if self.app is not None:
            await self.app.close()


class ConveyorWorker:
    """An in-process ``Worker`` (the benchmark's subprocess is the worker process)."""

    def __init__(self, spec: RunSpec, producer: ConveyorProducer) -> None:
        self.spec = spec
        self.producer = producer
        self._app: Conveyor | None = None
        self._worker: Worker | None = None
        self._running: Any = None

    def _build(self, burst: bool) -> Worker:
        spec = self.spec
        if spec.target == "memory":  # the queue lives in the producer's driver object
            assert self.producer.app is not None
            app = self.producer.app
        else:  # a worker process has its own connection; so does this one
            app = self._app = Conveyor(self.producer.url)
        options: dict[str, Any] = {}
        if spec.process_pool:
            options["process_pool_size"] = spec.process_pool
            options["modules"] = ("benchmarks.tasks",)
        return app.worker(concurrency=spec.concurrency, burst=burst, **options)

    async def run_until_empty(self) -> dict[str, Any]:
        self._worker = worker = self._build(burst=True)
        try:
            stats = await worker.run()
        finally:
            if self._app is not None:
                await self._app.close()
        return asdict(stats)

    async def start(self) -> None:
        self._worker = worker = self._build(burst=False)
        self._running = asyncio.create_task(worker.run())

    async def stop(self) -> dict[str, Any]:
        assert self._worker is not None
        self._worker.stop()
        stats = await self._running
        if self._app is not None:
            await self._app.close()
        return asdict(stats)


class ConveyorFramework:
    name = "conveyor"

    def targets(self) -> Sequence[str]:
        return TARGETS

    def unavailable(self, target: str) -> str | None:
        if target not in TARGETS:
            return f"unknown Conveyor target {target!r}"
        module = f"conveyor.drivers.{target}"
        if importlib.util.find_spec(module) is None:
            return f"driver not available ({module} does not exist yet)"
        try:
            create_driver(url_for(target, "/tmp", "probe"))
        except (ConfigurationError, ImportError) as exc:
            return f"driver not available ({exc})"
        if target == "redis":
            return redisctl.ping()
        if target in SQL_TARGETS:
            return sqlctl.ping(target)
        return None

    async def prepare(self, spec: RunSpec) -> None:
        """SQL targets: ``conveyor migrate`` both of the run's fresh databases."""
        if spec.target not in SQL_TARGETS:
            return
        for name in ("bench", "scratch"):
            driver: Any = create_driver(url_for(spec.target, spec.workdir, name, spec.database))
            try:
                await driver.migrate()
            finally:
                await driver.close()

    async def before_work(self, spec: RunSpec) -> None:
        """SQL targets: planner statistics for the freshly filled tables."""
        if spec.target in SQL_TARGETS:
            await sqlctl.analyze(url_for(spec.target, spec.workdir, "bench", spec.database))

    def versions(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for dist in (
            "conveyor",
            "msgspec",
            "aiosqlite",
            "uvloop",
            "pydantic",
            "redis",
            "hiredis",
            "asyncpg",
            "asyncmy",
        ):
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return out

    def producer(self, spec: RunSpec, *, scratch: bool) -> ConveyorProducer:
        name = "scratch" if scratch else "bench"
        return ConveyorProducer(spec, url_for(spec.target, spec.workdir, name, spec.database))

    def worker(self, spec: RunSpec, producer: Any) -> Any:
        assert isinstance(producer, ConveyorProducer)
        if spec.target == "redis" or spec.target in SQL_TARGETS:
            # side by side: a worker process of its own, like the peers
            from benchmarks.peers._base import ExternalWorker

            return ExternalWorker(spec)
        return ConveyorWorker(spec, producer)


def serve(spec: RunSpec, index: int) -> None:
    """One worker process on ``spec``'s broker until killed (``python -m benchmarks.peers``).

    What ``conveyor worker --concurrency N [--process-pool-size P]`` runs, started the way
    every peer's worker is (:class:`benchmarks.peers._base.ExternalWorker`).
    """
    import logging

    from benchmarks.peers._base import mark_ready, run_async

    logging.basicConfig(level=logging.WARNING)
    import benchmarks.tasks  # noqa: F401  (registers the tasks)

    async def main() -> None:
        app = Conveyor(url_for(spec.target, spec.workdir, "bench", spec.database))
        options: dict[str, Any] = {}
        if spec.process_pool:
            options["process_pool_size"] = spec.process_pool
            options["modules"] = ("benchmarks.tasks",)
        worker = app.worker(concurrency=spec.concurrency, burst=False, **options)
        running = asyncio.ensure_future(worker.run())
        # ready as a peer is: connected, with its process pool (if any) up
        await asyncio.wait(
            [running, asyncio.ensure_future(worker.ready.wait())], return_when="FIRST_COMPLETED"
        )
        mark_ready(spec, index)
        await running

    run_async(spec, main)
