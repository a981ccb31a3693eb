"""Taskiq with taskiq-redis's ``RedisStreamBroker`` (streams + consumer group, acks).

``task.kiq``; no bulk enqueue API. The worker is taskiq's receiver
(``taskiq.api.run_receiver_task``, what ``taskiq worker`` runs in each process) with
``max_async_tasks``; the CPU task is a sync function in taskiq's process pool
(``use_process_pool``). No result backend.
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


async def noop(i: int) -> None:
    record(i)


async def io(i: int) -> None:
    await asyncio.sleep(IO_SECONDS)
    record(i)


def cpu(i: int) -> int:  # sync: runs in the receiver's executor (a process pool)
    x = burn()
    record(i)
    return x


def build(url: str) -> tuple[Any, dict[str, Any]]:
    from taskiq_redis import RedisStreamBroker

    broker = RedisStreamBroker(url, queue_name=QUEUE)
    # explicit names: taskiq renames the original function (``noop__taskiq_original``)
    named = {"noop": noop, "io": io, "cpu": cpu}
    tasks = {name: broker.task(task_name=name)(f) for name, f in named.items()}
    return broker, tasks


class TaskiqProducer:
    bulk = False

    def __init__(self, spec: RunSpec, url: str) -> None:
        self.function = FUNCTIONS[spec.scenario]
        self.url = url
        self.broker: Any = None
        self.task: Any = None

    async def open(self) -> None:
        self.broker, tasks = build(self.url)
        self.task = tasks[self.function]
        await self.broker.startup()  # creates the consumer group before the first message

    async def send_one(self, i: int) -> None:
        await self.task.kiq(i)

    async def send_many(self, indices: range) -> None:
        await fill(self, indices)

    async def close(self) -> None:
        if self.broker is not None:
            await self.broker.shutdown()


class TaskiqFramework(PeerFramework):
    name = "taskiq"
    module = "taskiq"
    dists = ("taskiq", "taskiq-redis", "redis", "hiredis", "uvloop")

    def producer(self, spec: RunSpec, *, scratch: bool) -> TaskiqProducer:
        return TaskiqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    from taskiq.api import run_receiver_task

    quiet_logs()
    url = TaskiqFramework().url(scratch=False)

    async def main() -> None:
        broker, _ = build(url)
        broker.is_worker_process = True
        await broker.startup()
        mark_ready(spec, index)
        await run_receiver_task(
            broker,
            max_async_tasks=spec.concurrency,
            sync_workers=spec.process_pool or None,
            use_process_pool=spec.pool == "process",
            run_startup=False,
        )

    run_async(spec, main)
