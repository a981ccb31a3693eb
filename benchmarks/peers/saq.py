"""SAQ (asyncio, Redis): ``Queue.enqueue``; ``saq.Worker`` with ``concurrency``.

No bulk enqueue API (``Queue.map`` also waits for the results); no process pool (the CPU
task runs on the event loop, so the CPU sweep adds a second worker process). SAQ keeps
every job's state in Redis, which is how it works; its defaults are otherwise kept.
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, fill, mark_ready, quiet_logs, run_async
from benchmarks.timing import record

FUNCTIONS = {"noop": "noop", "io": "io", "cpu": "cpu", "latency": "noop"}
QUEUE = "bench"


async def noop(ctx: dict[str, Any], *, i: int) -> None:
    record(i)


async def io(ctx: dict[str, Any], *, i: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    record(i)


async def cpu(ctx: dict[str, Any], *, i: int) -> int:
    x = burn()
    record(i)
    return x


class SaqProducer:
    bulk = False

    def __init__(self, spec: RunSpec, url: str) -> None:
        self.function = FUNCTIONS[spec.scenario]
        self.url = url
        self.queue: Any = None

    async def open(self) -> None:
        from saq import Queue

        self.queue = Queue.from_url(self.url, name=QUEUE)
        await self.queue.connect()

    async def send_one(self, i: int) -> None:
        await self.queue.enqueue(self.function, i=i)

    async def send_many(self, indices: range) -> None:
        await fill(self, indices)

    async def close(self) -> None:
        if self.queue is not None:
            await self.queue.disconnect()


class SaqFramework(PeerFramework):
    name = "saq"
    module = "saq"
    dists = ("saq", "redis", "hiredis", "uvloop")

    def producer(self, spec: RunSpec, *, scratch: bool) -> SaqProducer:
        return SaqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    from saq import Queue, Worker

    quiet_logs()
    url = SaqFramework().url(scratch=False)

    async def started(ctx: dict[str, Any]) -> None:
        mark_ready(spec, index)

    async def main() -> None:
        queue = Queue.from_url(url, name=QUEUE)
        worker = Worker(
            queue,
            functions=[noop, io, cpu],
            concurrency=spec.concurrency,
            startup=started,
        )
        await worker.start()

    run_async(spec, main)
