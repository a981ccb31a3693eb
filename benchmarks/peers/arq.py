"""arq (asyncio, Redis): ``ArqRedis.enqueue_job``; ``arq.worker.Worker`` with ``max_jobs``.

No bulk enqueue API; no process pool (the CPU task runs on the event loop, so the CPU
sweep adds a second worker process). Results are not stored (``keep_result=0``); the
worker's poll delay is arq's default (0.5 s), which is what its latency reflects; the
sweep also tries 10 ms (``pool="poll10ms"``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, fill, mark_ready, quiet_logs, run_async
from benchmarks.timing import record

FUNCTIONS = {"noop": "noop", "io": "io", "cpu": "cpu", "latency": "noop"}


async def noop(ctx: dict[str, Any], i: int) -> None:
    record(i)


async def io(ctx: dict[str, Any], i: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    record(i)


async def cpu(ctx: dict[str, Any], i: int) -> int:
    x = burn()
    record(i)
    return x


class ArqProducer:
    bulk = False

    def __init__(self, spec: RunSpec, url: str) -> None:
        self.function = FUNCTIONS[spec.scenario]
        self.url = url
        self.redis: Any = None

    async def open(self) -> None:
        from arq import create_pool
        from arq.connections import RedisSettings

        self.redis = await create_pool(RedisSettings.from_dsn(self.url))

    async def send_one(self, i: int) -> None:
        await self.redis.enqueue_job(self.function, i)

    async def send_many(self, indices: range) -> None:
        await fill(self, indices)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


class ArqFramework(PeerFramework):
    name = "arq"
    module = "arq"
    dists = ("arq", "redis", "hiredis", "uvloop")

    def producer(self, spec: RunSpec, *, scratch: bool) -> ArqProducer:
        return ArqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    quiet_logs()
    url = ArqFramework().url(scratch=False)

    async def started(ctx: dict[str, Any]) -> None:
        mark_ready(spec, index)

    async def main() -> None:
        worker = Worker(
            functions=[func(f, name=f.__name__, keep_result=0) for f in (noop, io, cpu)],  # type: ignore[arg-type]
            redis_settings=RedisSettings.from_dsn(url),
            max_jobs=spec.concurrency,
            keep_result=0,
            poll_delay=0.01 if spec.pool == "poll10ms" else 0.5,
            handle_signals=False,
            on_startup=started,
        )
        await worker.async_run()

    run_async(spec, main)
