"""Small helpers shared by the contract tests (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from conveyor.core.job import JobStatus, new_job_id
from conveyor.drivers import Driver
from conveyor.drivers.base import NewJob, Outcome, OutcomeKind, QueueStats, Reserved

LEASE = 30.0
#: Upper bound for things that are due "now" but judged by a broker that may sweep
#: expired leases or due jobs on its own schedule (the spec allows 1 s of lateness).
EVENTUALLY = 3.0


def new_job(
    queue: str,
    *,
    priority: int = 5,
    delay: float = 0.0,
    eta: float | None = None,
    payload: bytes | None = None,
    task: str = "contract.task",
) -> NewJob:
    job_id = new_job_id()
    return NewJob(
        id=job_id,
        task=task,
        queue=queue,
        payload=payload if payload is not None else f"payload-{job_id}".encode(),
        priority=priority,
        delay=delay,
        eta=eta,
    )


async def enqueue(driver: Driver, queue: str, count: int = 1, **options: object) -> list[str]:
    """Enqueue ``count`` jobs in one batch; return their ids in order."""
    jobs = [new_job(queue, **options) for _ in range(count)]  # type: ignore[arg-type]
    await driver.enqueue(jobs)
    return [job.id for job in jobs]


async def reserve_one(
    driver: Driver, queue: str, *, lease: float = LEASE, worker: str = "w1"
) -> Reserved:
    got = await driver.reserve([queue], 1, lease, worker)
    assert len(got) == 1, f"expected one job in {queue}, got {got}"
    return got[0]


async def reserve_eventually(
    driver: Driver,
    queues: Sequence[str],
    *,
    limit: int = 1,
    lease: float = LEASE,
    worker: str = "w1",
    within: float = EVENTUALLY,
) -> list[Reserved]:
    """Reserve until something comes (a delay or a lease runs out), or fail after ``within``."""
    deadline = time.monotonic() + within
    while True:
        got = await driver.reserve(queues, limit, lease, worker)
        if got:
            return got
        assert time.monotonic() < deadline, f"nothing became due in {queues} within {within}s"
        await asyncio.sleep(0.02)


async def drain(driver: Driver, queues: Sequence[str], *, worker: str = "w1") -> list[Reserved]:
    """Reserve everything due now."""
    out: list[Reserved] = []
    while batch := await driver.reserve(queues, 100, LEASE, worker):
        out.extend(batch)
    return out


def done(job: Reserved, kind: OutcomeKind = OutcomeKind.SUCCEEDED, **fields: object) -> Outcome:
    return Outcome(job.id, job.token, kind, **fields)  # type: ignore[arg-type]


async def status_of(driver: Driver, job_id: str) -> JobStatus | None:
    info = await driver.get_job(job_id)
    return None if info is None else info.status


async def stats_for(driver: Driver, queue: str) -> QueueStats:
    """This queue's counts; a queue a driver doesn't list counts as empty."""
    for stats in await driver.stats():
        if stats.queue == queue:
            return stats
    return QueueStats(queue)
