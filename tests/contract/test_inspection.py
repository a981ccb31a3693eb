"""Cancellation, progress, stats, and waiting for work or for a job to finish."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor.core.job import JobStatus
from conveyor.drivers import Driver
from conveyor.drivers.base import OutcomeKind
from tests.contract.conftest import Names
from tests.contract.helpers import (
    LEASE,
    done,
    enqueue,
    new_job,
    reserve_one,
    stats_for,
    status_of,
)


async def test_cancel_waiting_jobs(driver: Driver, queue: str) -> None:
    queued = new_job(queue)
    scheduled = new_job(queue, delay=60.0)
    await driver.enqueue([queued, scheduled])

    for job in (queued, scheduled):
        assert await driver.cancel(job.id) is True
        info = await driver.get_job(job.id)
        assert info is not None
        assert info.status is JobStatus.CANCELLED
        assert info.error is not None
        assert info.error.type == "Cancelled"
        assert info.finished_at is not None
        assert await driver.cancel(job.id) is False
    assert await driver.reserve([queue], 10, LEASE, "w1") == []
    assert await driver.cancel("no-such-job") is False


async def test_cancel_active_job_is_a_request(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue, 2)
    job, bystander = await driver.reserve([queue], 2, LEASE, "w1")
    assert await driver.cancel(job.id) is True

    info = await driver.get_job(job.id)
    assert info is not None
    assert (info.status, info.cancel_requested) == (JobStatus.ACTIVE, True)
    renewed = await driver.renew([(job.id, job.token), (bystander.id, bystander.token)], LEASE)
    assert renewed.cancel_requested == {job.id}
    assert renewed.lost == frozenset()

    assert await driver.complete([done(job, OutcomeKind.CANCELLED)]) == [True]
    assert await status_of(driver, job.id) is JobStatus.CANCELLED
    assert await driver.cancel(job.id) is False


async def test_cancel_finished_job_is_refused(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    await driver.complete([done(job, result=b"1", result_ttl=60.0)])
    assert await driver.cancel(job.id) is False
    assert await status_of(driver, job.id) is JobStatus.SUCCEEDED


async def test_progress(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    await driver.set_progress(job.id, 0.5, "half way")
    info = await driver.get_job(job.id)
    assert info is not None
    assert (info.progress, info.progress_message) == (0.5, "half way")
    await driver.set_progress(job.id, 0.75, None)
    info = await driver.get_job(job.id)
    assert info is not None
    assert (info.progress, info.progress_message) == (0.75, None)


async def test_stats(driver: Driver, names: Names) -> None:
    queue, elsewhere = names.queue("a"), names.queue("b")
    await enqueue(driver, queue, 4)
    await enqueue(driver, queue, 1, delay=60.0)
    await enqueue(driver, elsewhere, 2)
    a, b, c = await driver.reserve([queue], 3, LEASE, "w1")
    await driver.complete(
        [
            done(a, OutcomeKind.DEAD),
            done(b, result=b"", result_ttl=60.0),
            done(c, OutcomeKind.RETRY, delay=60.0),
        ]
    )
    await driver.reserve([queue], 1, LEASE, "w1")

    stats = await stats_for(driver, queue)
    expected = {
        JobStatus.ACTIVE: 1,
        JobStatus.SCHEDULED: 1,
        JobStatus.DEAD: 1,
        JobStatus.SUCCEEDED: 1,
        JobStatus.RETRYING: 1,
    }
    assert {s: n for s, n in stats.counts.items() if n} == expected
    assert stats[JobStatus.QUEUED] == 0
    assert (await stats_for(driver, elsewhere))[JobStatus.QUEUED] == 2


async def test_wait_for_work_wakes_on_enqueue(driver: Driver, queue: str) -> None:
    waiter = asyncio.create_task(driver.wait_for_work([queue], 10.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    start = time.monotonic()
    await enqueue(driver, queue)
    await asyncio.wait_for(waiter, 1.0)
    assert time.monotonic() - start < 1.0


async def test_wait_for_work_returns_at_once_when_work_is_ready(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue)
    await asyncio.wait_for(driver.wait_for_work([queue], 10.0), 1.0)


async def test_wait_for_work_wakes_when_a_delay_runs_out(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue, delay=0.3)
    start = time.monotonic()
    await asyncio.wait_for(driver.wait_for_work([queue], 10.0), 2.0)
    assert time.monotonic() - start >= 0.2
    assert await driver.reserve([queue], 1, LEASE, "w1") != []


async def test_wait_for_work_times_out_when_idle(driver: Driver, queue: str) -> None:
    start = time.monotonic()
    await driver.wait_for_work([queue], 0.2)
    assert 0.15 <= time.monotonic() - start < 1.0


async def test_wait_finished(driver: Driver, queue: str) -> None:
    (job_id,) = await enqueue(driver, queue)
    waiter = asyncio.create_task(driver.wait_finished(job_id, 10.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    job = await reserve_one(driver, queue)
    await driver.complete([done(job, result=b"ok", result_ttl=60.0)])
    info = await asyncio.wait_for(waiter, 1.0)
    assert info is not None
    assert (info.status, info.result) == (JobStatus.SUCCEEDED, b"ok")

    assert await driver.wait_finished(job_id, 0.1) == info  # already finished
    assert await driver.wait_finished("no-such-job", 0.1) is None


async def test_wait_finished_sees_cancel_and_times_out(driver: Driver, queue: str) -> None:
    waiting, never = await enqueue(driver, queue, 2)
    with pytest.raises(TimeoutError):
        await driver.wait_finished(never, 0.1)
    waiter = asyncio.create_task(driver.wait_finished(waiting, 10.0))
    await asyncio.sleep(0.05)
    await driver.cancel(waiting)
    info = await asyncio.wait_for(waiter, 1.0)
    assert info is not None
    assert info.status is JobStatus.CANCELLED


async def test_wait_finished_timing_out_on_another_loop_leaves_no_trace(
    driver: Driver, queue: str
) -> None:
    # a handle awaited from sync code runs on a short-lived loop of its own
    (job_id,) = await enqueue(driver, queue)

    def on_another_loop() -> None:
        with pytest.raises(TimeoutError):
            asyncio.run(driver.wait_finished(job_id, 0.05))

    await asyncio.to_thread(on_another_loop)
    job = await reserve_one(driver, queue)
    assert await driver.complete([done(job, result=b"1", result_ttl=60.0)]) == [True]
    assert await status_of(driver, job_id) is JobStatus.SUCCEEDED
