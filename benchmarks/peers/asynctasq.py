"""AsyncTasQ (asyncio; its Redis driver): ``await task(i).dispatch()``; ``asynctasq.Worker``.

No bulk dispatch API. The CPU task is ``@task(process=True)``, run in AsyncTasQ's process
pool (``process_pool_size``). Needs Python >= 3.12, so its venv is built on one. Its worker
polls the queue and sleeps 0.1 s whenever a poll finds nothing (its design, kept).
"""

from __future__ import annotations

import asyncio
from typing import Any

from benchmarks import redisctl
from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, fill, mark_ready, quiet_logs, run_async
from benchmarks.timing import record

FUNCTIONS = {"noop": "noop", "io": "io", "cpu": "cpu", "latency": "noop"}
QUEUE = "bench"


async def noop(i: int) -> None:
    record(i)


async def io(i: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    record(i)


def cpu(i: int) -> int:  # sync, process=True: runs in AsyncTasQ's process pool
    x = burn()
    record(i)
    return x


def configure(url: str) -> dict[str, Any]:
    """``asynctasq.init`` for ``url``; the task wrappers by name."""
    import asynctasq

    host, port, db = redisctl.parts(url)
    asynctasq.init({"driver": "redis", "redis": {"url": f"redis://{host}:{port}", "db": db}})
    return {
        "noop": asynctasq.task(queue=QUEUE)(noop),
        "io": asynctasq.task(queue=QUEUE)(io),
        "cpu": asynctasq.task(queue=QUEUE, process=True)(cpu),
    }


class AsyncTasqProducer:
    bulk = False

    def __init__(self, spec: RunSpec, url: str) -> None:
        self.function = FUNCTIONS[spec.scenario]
        self.url = url
        self.task: Any = None

    async def open(self) -> None:
        self.task = configure(self.url)[self.function]

    async def send_one(self, i: int) -> None:
        await self.task(i).dispatch()

    async def send_many(self, indices: range) -> None:
        await fill(self, indices)

    async def close(self) -> None:
        import asynctasq

        await asynctasq.cleanup()


class AsyncTasqFramework(PeerFramework):
    name = "asynctasq"
    module = "asynctasq"
    dists = ("asynctasq", "redis", "hiredis", "msgspec", "uvloop")

    def producer(self, spec: RunSpec, *, scratch: bool) -> AsyncTasqProducer:
        return AsyncTasqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    quiet_logs()
    url = AsyncTasqFramework().url(scratch=False)

    async def main() -> None:
        from asynctasq import Config, DriverFactory, Worker

        configure(url)
        config = Config.get()
        worker = Worker(
            queue_driver=DriverFactory.create(config.driver, config),
            queues=[QUEUE],
            concurrency=spec.concurrency,
            process_pool_size=spec.process_pool or None,
        )
        mark_ready(spec, index)
        await worker.start()

    run_async(spec, main)
