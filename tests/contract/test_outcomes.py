"""Outcomes: retries, snoozes, releases, dead letters and results."""

from __future__ import annotations

import asyncio

from conveyor.core.job import ErrorInfo, JobStatus
from conveyor.drivers import Driver
from conveyor.drivers.base import OutcomeKind
from tests.contract.conftest import Names
from tests.contract.helpers import (
    LEASE,
    done,
    enqueue,
    reserve_eventually,
    reserve_one,
    status_of,
)

BOOM = ErrorInfo(
    "ValueError", "boom", "Traceback (most recent call last):\n  ...\nValueError: boom"
)


async def test_retry_keeps_the_attempt_and_the_error(driver: Driver, queue: str) -> None:
    (job_id,) = await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    assert await driver.complete([done(job, OutcomeKind.RETRY, error=BOOM)]) == [True]
    info = await driver.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.error) == (JobStatus.RETRYING, 1, BOOM)

    job = await reserve_one(driver, queue)
    assert job.attempts == 2


async def test_success_after_a_retry_clears_the_error(driver: Driver, queue: str) -> None:
    """A job that failed once and then succeeded reports no error: the failure was an
    earlier attempt's, not the job's outcome."""
    (job_id,) = await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    assert await driver.complete([done(job, OutcomeKind.RETRY, error=BOOM)]) == [True]
    job = await reserve_one(driver, queue)
    assert await driver.complete([done(job, result=b"ok", result_ttl=60.0)]) == [True]
    info = await driver.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.result, info.error) == (
        JobStatus.SUCCEEDED,
        2,
        b"ok",
        None,
    )


async def test_retry_with_delay(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    await driver.complete([done(job, OutcomeKind.RETRY, delay=0.3, error=BOOM)])
    assert await status_of(driver, job.id) is JobStatus.RETRYING
    assert await driver.reserve([queue], 1, LEASE, "w1") == []
    (again,) = await reserve_eventually(driver, [queue])
    assert (again.id, again.attempts) == (job.id, 2)


async def test_snooze_and_release_give_the_attempt_back(driver: Driver, queue: str) -> None:
    (job_id,) = await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    assert job.attempts == 1

    await driver.complete([done(job, OutcomeKind.SNOOZE)])
    info = await driver.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts) == (JobStatus.QUEUED, 0)
    job = await reserve_one(driver, queue)
    assert job.attempts == 1

    await driver.complete([done(job, OutcomeKind.RELEASE)])
    assert await status_of(driver, job_id) is JobStatus.QUEUED
    job = await reserve_one(driver, queue)
    assert job.attempts == 1

    await driver.complete([done(job, OutcomeKind.SNOOZE, delay=0.3)])
    info = await driver.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts) == (JobStatus.SCHEDULED, 0)
    assert await driver.reserve([queue], 1, LEASE, "w1") == []
    (job,) = await reserve_eventually(driver, [queue])
    assert job.attempts == 1


async def test_dead_letters(driver: Driver, names: Names) -> None:
    queue, elsewhere = names.queue("a"), names.queue("b")
    ids = await enqueue(driver, queue, 3)
    (other_id,) = await enqueue(driver, elsewhere)
    jobs = await driver.reserve([queue, elsewhere], 4, LEASE, "w1")
    outcomes = [done(j, OutcomeKind.DEAD, error=BOOM) for j in jobs]
    assert await driver.complete(outcomes) == [True] * 4

    info = await driver.get_job(ids[0])
    assert info is not None
    assert (info.status, info.attempts, info.error) == (JobStatus.DEAD, 1, BOOM)
    assert info.finished_at is not None
    assert await driver.reserve([queue], 1, LEASE, "w1") == []

    dead = await driver.list_jobs(JobStatus.DEAD, queue=queue)
    assert [i.id for i in dead] == ids
    assert all(i.error == BOOM and i.status is JobStatus.DEAD for i in dead)
    page = await driver.list_jobs(JobStatus.DEAD, queue=queue, limit=1, offset=1)
    assert [i.id for i in page] == ids[1:2]
    assert [i.id for i in await driver.list_jobs(JobStatus.DEAD, queue=elsewhere)] == [other_id]
    assert await driver.list_jobs(JobStatus.QUEUED, queue=queue) == []


async def test_retry_dead_one_then_all(driver: Driver, names: Names) -> None:
    queue, elsewhere = names.queue("a"), names.queue("b")
    ids = await enqueue(driver, queue, 3)
    (other_id,) = await enqueue(driver, elsewhere)
    jobs = await driver.reserve([queue, elsewhere], 4, LEASE, "w1")
    await driver.complete([done(j, OutcomeKind.DEAD, error=BOOM) for j in jobs])

    assert await driver.retry_dead([ids[1]], queue=queue) == 1
    info = await driver.get_job(ids[1])
    assert info is not None
    assert (info.status, info.attempts, info.error, info.finished_at) == (
        JobStatus.QUEUED,
        0,
        None,
        None,
    )
    job = await reserve_one(driver, queue)
    assert (job.id, job.attempts, job.deaths) == (ids[1], 1, 0)
    assert await driver.retry_dead([ids[1], "unknown"], queue=queue) == 0  # not dead

    assert await driver.retry_dead(None, queue=queue) == 2
    assert sorted(r.id for r in await driver.reserve([queue], 10, LEASE, "w1")) == sorted(
        [ids[0], ids[2]]
    )
    assert await status_of(driver, other_id) is JobStatus.DEAD  # another queue: untouched


async def test_purge_dead(driver: Driver, names: Names) -> None:
    queue, elsewhere = names.queue("a"), names.queue("b")
    ids = await enqueue(driver, queue, 2)
    (other_id,) = await enqueue(driver, elsewhere)
    jobs = await driver.reserve([queue, elsewhere], 3, LEASE, "w1")
    await driver.complete([done(j, OutcomeKind.DEAD, error=BOOM) for j in jobs])

    assert await driver.purge(JobStatus.DEAD, queue=queue) == 2
    assert await driver.get_job(ids[0]) is None
    assert await driver.list_jobs(JobStatus.DEAD, queue=queue) == []
    assert await status_of(driver, other_id) is JobStatus.DEAD
    assert await driver.purge(JobStatus.DEAD, queue=queue) == 0


async def test_result_kept_for_its_ttl(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue, 2)
    short, long = await driver.reserve([queue], 2, LEASE, "w1")
    outcomes = [
        done(short, result=b"short", result_ttl=0.3),
        done(long, result=b"long", result_ttl=60.0),
    ]
    assert await driver.complete(outcomes) == [True, True]
    info = await driver.get_job(short.id)
    assert info is not None
    assert (info.status, info.result) == (JobStatus.SUCCEEDED, b"short")

    await asyncio.sleep(0.35)
    assert await driver.get_job(short.id) is None
    assert [i.id for i in await driver.list_jobs(JobStatus.SUCCEEDED, queue=queue)] == [long.id]
    info = await driver.get_job(long.id)
    assert info is not None
    assert info.result == b"long"


async def test_result_ttl_zero_keeps_nothing(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue)
    job = await reserve_one(driver, queue)
    assert await driver.complete([done(job, result=b"x", result_ttl=0.0)]) == [True]
    assert await driver.get_job(job.id) is None
    assert await driver.complete([done(job)]) == [False]
