"""Enqueue and reserve: what comes out, in which order, and when."""

from __future__ import annotations

import asyncio
import time

from conveyor.core.job import JobStatus
from conveyor.drivers import Driver
from conveyor.drivers.base import Outcome, OutcomeKind, Reserved
from tests.contract.conftest import Names
from tests.contract.helpers import (
    LEASE,
    done,
    drain,
    enqueue,
    new_job,
    reserve_eventually,
    status_of,
)


async def test_enqueue_reserve_complete(driver: Driver, queue: str) -> None:
    job = new_job(queue, payload=b"\x00\xffbinary\x00", priority=3, task="mod.fn")
    await driver.enqueue([job])

    info = await driver.get_job(job.id)
    assert info is not None
    assert (info.task, info.queue, info.status, info.attempts) == ("mod.fn", queue, "queued", 0)
    assert info.payload == job.payload
    assert info.priority == 3

    (got,) = await driver.reserve([queue], 10, LEASE, "w1")
    assert (got.id, got.queue, got.payload, got.priority) == (job.id, queue, job.payload, 3)
    assert got.attempts == 1
    assert got.deaths == 0
    assert got.token
    assert await status_of(driver, job.id) is JobStatus.ACTIVE
    assert await driver.reserve([queue], 10, LEASE, "w1") == []

    assert await driver.complete([done(got, result=b"42", result_ttl=60.0)]) == [True]
    info = await driver.get_job(job.id)
    assert info is not None
    assert info.status is JobStatus.SUCCEEDED
    assert info.result == b"42"
    assert info.finished_at is not None


async def test_unknown_things(driver: Driver, queue: str) -> None:
    assert await driver.get_job("no-such-job") is None
    assert await driver.reserve([queue, "no-such-queue"], 10, LEASE, "w1") == []
    assert await driver.reserve([queue], 0, LEASE, "w1") == []


async def test_tokens_are_distinct(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue, 20)
    got = await driver.reserve([queue], 20, LEASE, "w1")
    assert len({r.token for r in got}) == 20


async def test_fifo_within_a_priority(driver: Driver, queue: str) -> None:
    first = await enqueue(driver, queue, 5)
    second = await enqueue(driver, queue, 5)
    order = [(await driver.reserve([queue], 1, LEASE, "w1"))[0].id for _ in range(10)]
    assert order == first + second


async def test_priority_zero_first(driver: Driver, queue: str) -> None:
    jobs = [new_job(queue, priority=p) for p in (9, 5, 0, 9, 0, 1)]
    await driver.enqueue(jobs)
    got = await driver.reserve([queue], 10, LEASE, "w1")
    assert [r.priority for r in got] == [0, 0, 1, 5, 9, 9]
    # ties keep enqueue order
    assert [r.id for r in got] == [jobs[i].id for i in (2, 4, 5, 1, 0, 3)]


async def test_limit_respected_across_calls(driver: Driver, queue: str) -> None:
    ids = await enqueue(driver, queue, 7)
    first = await driver.reserve([queue], 3, LEASE, "w1")
    second = await driver.reserve([queue], 3, LEASE, "w1")
    third = await driver.reserve([queue], 3, LEASE, "w1")
    assert [len(first), len(second), len(third)] == [3, 3, 1]
    assert [r.id for r in first + second + third] == ids


async def test_queues_taken_in_the_order_listed(driver: Driver, names: Names) -> None:
    high, low = names.queue("high"), names.queue("low")
    low_ids = await enqueue(driver, low, 3)
    high_ids = await enqueue(driver, high, 2, priority=9)

    got = await driver.reserve([high, low], 4, LEASE, "w1")
    assert [r.id for r in got] == high_ids + low_ids[:2]
    assert [r.queue for r in got] == [high, high, low, low]
    got = await driver.reserve([low, high], 4, LEASE, "w1")
    assert [r.id for r in got] == low_ids[2:]


async def test_queues_are_separate(driver: Driver, names: Names) -> None:
    await enqueue(driver, names.queue("a"), 2)
    assert await driver.reserve([names.queue("b")], 10, LEASE, "w1") == []
    assert len(await driver.reserve([names.queue("a")], 10, LEASE, "w1")) == 2


async def test_delay_and_eta(driver: Driver, queue: str) -> None:
    start = time.time()
    by_delay = new_job(queue, delay=0.3)
    by_eta = new_job(queue, eta=start + 0.3)
    now = new_job(queue)
    await driver.enqueue([by_delay, by_eta, now])

    assert await status_of(driver, by_delay.id) is JobStatus.SCHEDULED
    assert await status_of(driver, by_eta.id) is JobStatus.SCHEDULED
    assert [r.id for r in await driver.reserve([queue], 10, LEASE, "w1")] == [now.id]

    # the ETA became a delay by the producer's clock a moment after ``start``: the two
    # fall due a few milliseconds apart, in either order
    got = await reserve_eventually(driver, [queue], limit=10)
    if len(got) < 2:
        got += await reserve_eventually(driver, [queue], limit=10)
    assert time.time() - start >= 0.29
    assert {r.id for r in got} == {by_delay.id, by_eta.id}
    assert all(r.attempts == 1 for r in got)


async def test_eta_in_the_past_is_due_now(driver: Driver, queue: str) -> None:
    job = new_job(queue, eta=time.time() - 60)
    await driver.enqueue([job])
    assert await status_of(driver, job.id) is JobStatus.QUEUED
    assert [r.id for r in await driver.reserve([queue], 1, LEASE, "w1")] == [job.id]


async def test_due_scheduled_job_reports_queued(driver: Driver, queue: str) -> None:
    job = new_job(queue, delay=0.2)
    await driver.enqueue([job])
    assert await status_of(driver, job.id) is JobStatus.SCHEDULED
    await asyncio.sleep(0.25)
    assert await status_of(driver, job.id) is JobStatus.QUEUED
    assert [i.id for i in await driver.list_jobs(JobStatus.QUEUED, queue=queue)] == [job.id]
    assert await driver.list_jobs(JobStatus.SCHEDULED, queue=queue) == []


async def test_batch_reserved_exactly_once_by_concurrent_reservers(
    driver: Driver, other_driver: Driver, queue: str
) -> None:
    jobs = [new_job(queue, priority=i % 10) for i in range(1000)]
    await driver.enqueue(jobs)

    async def reserver(d: Driver, worker: str) -> list[Reserved]:
        mine: list[Reserved] = []
        while batch := await d.reserve([queue], 25, LEASE, worker):
            mine.extend(batch)
            await asyncio.sleep(0)
        return mine

    results = await asyncio.gather(
        *(reserver(d, f"w{i}") for i, d in enumerate([driver, other_driver] * 3))
    )
    got = [r for batch in results for r in batch]
    assert len(got) == len(jobs)
    assert {r.id for r in got} == {j.id for j in jobs}
    assert all(r.attempts == 1 for r in got)

    for i in range(0, len(got), 200):
        chunk = got[i : i + 200]
        assert await other_driver.complete([done(r) for r in chunk]) == [True] * len(chunk)
    assert await drain(driver, [queue]) == []


async def test_complete_answers_per_outcome(driver: Driver, queue: str) -> None:
    await enqueue(driver, queue, 3)
    a, b, c = await driver.reserve([queue], 3, LEASE, "w1")
    stale = done(b, OutcomeKind.SUCCEEDED)
    assert await driver.complete([done(a), stale]) == [True, True]
    wrong_token = Outcome(c.id, "not-the-token", OutcomeKind.SUCCEEDED)
    assert await driver.complete([stale, wrong_token, done(c)]) == [False, False, True]
    assert await driver.complete([]) == []
