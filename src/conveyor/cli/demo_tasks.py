"""The tasks of ``conveyor demo``, under stable names (``demo.*``).

A worker (and each of its process-pool children) imports this module to register them.
"""

from __future__ import annotations

import asyncio

from conveyor import Fail, current_job, task


@task(name="demo.io")
async def io_job(n: int) -> int:
    """I/O-bound: waits 10 ms, as a call to another service would."""
    await asyncio.sleep(0.01)
    return n


@task(name="demo.cpu", process=True)
def cpu_job(n: int) -> int:
    """CPU-bound pure Python (~50 ms), run in the worker's process pool."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


@task(name="demo.flaky", max_attempts=5, backoff=0.05)
async def flaky_job(succeed_on: int) -> str:
    """Fails until its ``succeed_on``-th attempt, then succeeds: retries at work."""
    attempt = current_job().attempt
    if attempt < succeed_on:
        raise ConnectionError(f"upstream unavailable (attempt {attempt} of {succeed_on})")
    return f"ok on attempt {attempt}"


@task(name="demo.poison", max_attempts=3, backoff=0.05)
async def poison_job(order_id: int) -> None:
    """Always fails: after its last attempt it lands in the dead letters."""
    if order_id < 0:
        raise Fail("negative order ids are never valid")
    raise ValueError(f"order {order_id} references a product that does not exist")


@task(name="demo.delayed")
async def delayed_job(message: str) -> str:
    """Dispatched with ``.delay(2)``: runs two seconds after the others were queued."""
    return message
