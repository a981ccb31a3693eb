"""streaq (anyio, Redis streams): ``task.enqueue``; bulk ``Worker.enqueue_many``; ``concurrency``.

No process pool (sync tasks run in threads; the CPU task is ``async`` and runs on the
event loop, so the CPU sweep adds a second worker process). Results are not stored
(``ttl=0``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, mark_ready, quiet_logs, run_async
from benchmarks.timing import record

FUNCTIONS = {"noop": "noop", "io": "io", "cpu": "cpu", "latency": "noop"}


async def noop(i: int) -> None:
    record(i)


async def io(i: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    record(i)


async def cpu(i: int) -> int:
    x = burn()
    record(i)
    return x


def build(url: str, concurrency: int = 16, **options: Any) -> tuple[Any, dict[str, Any]]:
    """A streaq ``Worker`` (its tasks live on it) and its registered tasks by name."""
    from streaq import Worker

    worker = Worker(redis_url=url, concurrency=concurrency, handle_signals=False, **options)
    tasks = {f.__name__: worker.task(name=f.__name__, ttl=0)(f) for f in (noop, io, cpu)}
    return worker, tasks


class StreaqProducer:
    bulk = True

    def __init__(self, spec: RunSpec, url: str) -> None:
        self.function = FUNCTIONS[spec.scenario]
        self.url = url
        self.worker: Any = None
        self.task: Any = None

    async def open(self) -> None:
        self.worker, tasks = build(self.url)
        self.task = tasks[self.function]
        await self.worker.__aenter__()

    async def send_one(self, i: int) -> None:
        await self.task.enqueue(i)

    async def send_many(self, indices: range) -> None:
        task = self.task
        await self.worker.enqueue_many([task.enqueue(i) for i in indices])

    async def close(self) -> None:
        if self.worker is not None:
            await self.worker.__aexit__(None, None, None)


class StreaqFramework(PeerFramework):
    name = "streaq"
    module = "streaq"
    dists = ("streaq", "coredis", "anyio", "hiredis", "uvloop")

    def producer(self, spec: RunSpec, *, scratch: bool) -> StreaqProducer:
        return StreaqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    quiet_logs()
    url = StreaqFramework().url(scratch=False)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        mark_ready(spec, index)
        yield None

    async def main() -> None:
        worker, _ = build(url, spec.concurrency, lifespan=lifespan)
        await worker.run_async()

    run_async(spec, main)
