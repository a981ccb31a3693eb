"""Leases: expiry redelivers with the attempt counted, renewal keeps a job, tokens fence."""

from __future__ import annotations

import asyncio
import time

from conveyor.core.job import JobStatus
from conveyor.drivers import Driver
from conveyor.drivers.base import OutcomeKind
from tests.contract.helpers import (
    LEASE,
    done,
    enqueue,
    reserve_eventually,
    reserve_one,
    status_of,
)

SHORT = 0.2


async def test_expired_lease_is_redelivered_with_attempt_and_death_counted(
    driver: Driver, other_driver: Driver, queue: str
) -> None:
    (job_id,) = await enqueue(driver, queue)
    first = await reserve_one(driver, queue, lease=SHORT)
    assert (first.attempts, first.deaths) == (1, 0)

    assert await other_driver.reserve([queue], 1, LEASE, "w2") == []
    start = time.monotonic()
    (again,) = await reserve_eventually(other_driver, [queue], worker="w2")
    assert again.id == job_id
    assert (again.attempts, again.deaths) == (2, 1)
    assert again.token != first.token
    assert time.monotonic() - start < 1.5


async def test_renew_keeps_a_job_from_redelivery(
    driver: Driver, other_driver: Driver, queue: str
) -> None:
    # a lease of 0.6 s renewed every 0.2 s: a renewal may take up to 0.4 s (one commit of a
    # private MySQL server on a busy 2-core machine once took over the 0.1 s that a 0.2 s
    # lease renewed every 0.1 s left it)
    lease = 3 * SHORT
    await enqueue(driver, queue)
    job = await reserve_one(driver, queue, lease=lease)
    for _ in range(5):  # 1 s in all, well past the first lease
        await asyncio.sleep(SHORT)
        renewed = await driver.renew([(job.id, job.token)], lease)
        assert renewed.lost == frozenset()
        assert await other_driver.reserve([queue], 1, LEASE, "w2") == []
    assert await status_of(driver, job.id) is JobStatus.ACTIVE
    assert await driver.complete([done(job)]) == [True]


async def test_fencing_after_redelivery(driver: Driver, other_driver: Driver, queue: str) -> None:
    (job_id,) = await enqueue(driver, queue)
    stale = await reserve_one(driver, queue, lease=SHORT)
    (fresh,) = await reserve_eventually(other_driver, [queue], worker="w2")
    assert fresh.id == job_id

    # the first worker's token is dead: nothing it says changes the job
    assert await driver.complete([done(stale, result=b"stale", result_ttl=60.0)]) == [False]
    assert await driver.complete([done(stale, OutcomeKind.DEAD)]) == [False]
    assert await driver.complete([done(stale, OutcomeKind.RELEASE)]) == [False]
    renewed = await driver.renew([(stale.id, stale.token)], LEASE)
    assert renewed.lost == {job_id}
    info = await driver.get_job(job_id)
    assert info is not None
    assert (info.status, info.attempts, info.result) == (JobStatus.ACTIVE, 2, None)

    # the second worker still holds it
    assert (await other_driver.renew([(fresh.id, fresh.token)], LEASE)).lost == frozenset()
    assert await other_driver.complete([done(fresh, result=b"fresh", result_ttl=60.0)]) == [True]
    info = await driver.get_job(job_id)
    assert info is not None
    assert (info.status, info.result) == (JobStatus.SUCCEEDED, b"fresh")


async def test_renew_reports_finished_and_unknown_jobs_lost(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue, 2)
    a, b = await driver.reserve([queue], 2, LEASE, "w1")
    assert await driver.complete([done(a)]) == [True]
    renewed = await driver.renew([(a.id, a.token), (b.id, b.token), ("nope", "x")], LEASE)
    assert renewed.lost == {a.id, "nope"}
    assert renewed.cancel_requested == frozenset()
    assert (await driver.renew([], LEASE)).lost == frozenset()


async def test_renew_after_expiry_is_lost(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue)
    job = await reserve_one(driver, queue, lease=SHORT)
    await asyncio.sleep(SHORT + 0.1)
    assert (await driver.renew([(job.id, job.token)], LEASE)).lost == {job.id}
