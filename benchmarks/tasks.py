"""Conveyor's benchmark tasks. Each records its completion in the table (:mod:`.timing`).

The process-pool children import this module too (``modules=("benchmarks.tasks",)``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import conveyor
from benchmarks.bodies import CPU_ROUNDS, burn
from benchmarks.timing import record

__all__ = ["CPU_ROUNDS", "TASKS", "burn", "cpu", "io", "noop"]


@conveyor.task(name="bench.noop")
async def noop(i: int) -> None:
    record(i)


@conveyor.task(name="bench.io")
async def io(i: int) -> None:
    await asyncio.sleep(0.01)
    record(i)


@conveyor.task(name="bench.cpu", process=True)
def cpu(i: int) -> int:
    x = burn()
    record(i)
    return x


TASKS: dict[str, conveyor.TaskDef[[int], Any]] = {
    "noop": noop,
    "io": io,
    "cpu": cpu,
    "latency": noop,
}
