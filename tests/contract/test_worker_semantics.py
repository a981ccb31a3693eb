"""Delivery semantics (SPEC §5) through a real ``Worker``, on every driver.

Each test runs once per driver of the contract suite (``conftest.DRIVERS``: the
``broker_url`` fixture), through the module's ``app`` fixture: retries and dead
letters, Retry/Snooze/Fail, results, cancellation, timeouts, leases, untrusted
messages, poison pills, graceful shutdown, volume, priorities. Every queue is
private to its test (``names``), so a shared server needs no flushing.
Tests await events and job states; the few real waits are fractions of a second.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgspec
import pytest

import conveyor
from conveyor import (
    Conveyor,
    Fail,
    JobNotFoundError,
    JobStatus,
    Retry,
    Snooze,
    TaskCancelledError,
    TaskFailed,
    current_job,
    task,
)
from conveyor.core import dispatch as core_dispatch
from conveyor.core.job import Envelope, JobInfo, new_job_id
from conveyor.drivers.base import NewJob
from conveyor.worker import Worker
from tests.contract.conftest import Names


@pytest.fixture
async def app(broker_url: str, names: Names) -> AsyncIterator[Conveyor]:
    """A connected app on each driver, the default app for the test; fast retry settings.

    Its default queue (where tasks go and workers listen) is private to the test.
    """
    instance = Conveyor(
        broker_url,
        default_queue=names.queue(),
        backoff_base=0.01,
        backoff_cap=0.05,
        idle_poll_max=0.02,
        lease_seconds=5.0,
        shutdown_grace=5.0,
        concurrency=10,
    )
    previous = core_dispatch._default_app
    core_dispatch.set_default_app(instance)
    await instance.connect()
    try:
        yield instance
    finally:
        core_dispatch.set_default_app(previous)
        await instance.close()


@asynccontextmanager
async def running(app: Conveyor, **overrides: Any) -> AsyncIterator[Worker]:
    """A worker running in the background for the block; stopped (gracefully) after it."""
    worker = app.worker(**overrides)
    run = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(run, 15)


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll ``check`` (a cheap broker query) until true."""
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.005)


async def info(app: Conveyor, job_id: str) -> JobInfo:
    found = await app.job_info(job_id)
    assert found is not None, f"job {job_id} is gone"
    return found


async def wait_thread_event(event: threading.Event, timeout: float = 5.0) -> None:
    assert await asyncio.to_thread(event.wait, timeout), "timed out waiting for the task"


class PaymentDeclinedError(Exception):
    pass


# -- retries and dead letters ------------------------------------------------------------


async def test_retries_with_backoff_then_dead_letter(app: Conveyor, names: Names) -> None:
    attempts: list[tuple[int, float]] = []

    @task(max_attempts=3, backoff=0.02)
    async def charge(card: str) -> None:
        attempts.append((current_job().attempt, time.monotonic()))
        raise PaymentDeclinedError(f"declined {card} on attempt {current_job().attempt}")

    handle = await charge("4242").dispatch()
    async with running(app):
        with pytest.raises(TaskFailed) as failed:
            await handle.result(timeout=10)
    assert [a for a, _ in attempts] == [1, 2, 3]
    error = failed.value
    assert error.job_id == handle.id
    assert error.exc_type == f"{__name__}.PaymentDeclinedError"
    assert error.message == "declined 4242 on attempt 3"
    assert "Traceback (most recent call last)" in error.traceback
    assert "raise PaymentDeclinedError" in error.traceback

    assert await handle.status() is JobStatus.DEAD
    dead = await app.dead_letters(queue=names.queue())
    assert [d.id for d in dead] == [handle.id]
    assert dead[0].attempts == 3
    assert dead[0].error is not None
    assert dead[0].error.type == error.exc_type
    assert dead[0].error.message == error.message
    assert "raise PaymentDeclinedError" in dead[0].error.traceback


async def test_retry_signal_uses_an_attempt_after_its_delay(app: Conveyor) -> None:
    seen: list[tuple[int, float]] = []

    @task(max_attempts=3)
    async def poll_upstream() -> str:
        seen.append((current_job().attempt, time.monotonic()))
        if len(seen) == 1:
            raise Retry(delay=0.15)
        return "ready"

    handle = await poll_upstream().dispatch()
    async with running(app):
        assert await handle.result(timeout=10) == "ready"
    assert [a for a, _ in seen] == [1, 2]
    assert seen[1][1] - seen[0][1] >= 0.15
    assert (await info(app, handle.id)).attempts == 2


async def test_snooze_does_not_use_an_attempt(app: Conveyor) -> None:
    seen: list[int] = []

    @task(max_attempts=1)
    async def wait_for_slot() -> str:
        seen.append(current_job().attempt)
        if len(seen) < 3:
            raise Snooze(0.02)
        return "slot"

    handle = await wait_for_slot().dispatch()
    async with running(app):
        assert await handle.result(timeout=10) == "slot"
    assert seen == [1, 1, 1]
    assert (await info(app, handle.id)).attempts == 1


async def test_fail_signal_is_dead_without_retrying(app: Conveyor) -> None:
    calls: list[int] = []

    @task(max_attempts=5)
    async def validate(n: int) -> None:
        calls.append(n)
        raise Fail(f"{n} is not valid")

    handle = await validate(7).dispatch()
    async with running(app):
        with pytest.raises(TaskFailed, match="7 is not valid") as failed:
            await handle.result(timeout=10)
    assert calls == [7]
    assert failed.value.exc_type == "conveyor.core.signals.Fail"
    assert (await info(app, handle.id)).attempts == 1


async def test_retry_on_limits_what_is_retried(app: Conveyor) -> None:
    calls: list[str] = []

    @task(max_attempts=3, retry_on=(OSError,), backoff=0.01)
    async def fetch(kind: str) -> None:
        calls.append(kind)
        if kind == "os":
            raise ConnectionResetError("reset")
        raise ValueError("bad data")

    retried = await fetch("os").dispatch()
    not_retried = await fetch("value").dispatch()
    async with running(app):
        with pytest.raises(TaskFailed, match="reset"):
            await retried.result(timeout=10)
        with pytest.raises(TaskFailed, match="bad data") as failed:
            await not_retried.result(timeout=10)
    assert calls.count("os") == 3
    assert calls.count("value") == 1
    assert failed.value.exc_type == "ValueError"
    assert (await info(app, not_retried.id)).attempts == 1


# -- results -------------------------------------------------------------------------------


async def test_results_are_typed_and_kept(app: Conveyor) -> None:
    @task
    async def summarize(values: list[int]) -> dict[str, float]:
        return {"total": float(sum(values)), "count": float(len(values))}

    handle = await summarize([1, 2, 3]).dispatch()
    async with running(app):
        assert await handle.result(timeout=10) == {"total": 6.0, "count": 3.0}
    assert await handle.status() is JobStatus.SUCCEEDED
    # a handle rebuilt from the id (another request) sees the same result
    again = app.handle(handle.id, summarize)
    assert await again.result(timeout=1) == {"total": 6.0, "count": 3.0}
    assert (await info(app, handle.id)).result is not None


async def test_result_ttl_zero_keeps_no_result(app: Conveyor) -> None:
    ran = asyncio.Event()

    @task(result_ttl=0)
    async def fire_and_forget(n: int) -> int:
        ran.set()
        return n

    handle = await fire_and_forget(5).dispatch()
    async with running(app):
        await asyncio.wait_for(ran.wait(), 10)
    # the worker has stopped, so the outcome is acked: nothing kept to return
    found = await app.job_info(handle.id)
    assert found is None or (found.status is JobStatus.SUCCEEDED and found.result is None)
    with pytest.raises(JobNotFoundError, match="result"):
        await handle.result(timeout=1)


async def test_result_expires_after_its_ttl(app: Conveyor) -> None:
    @task(result_ttl=0.3)
    async def short_lived() -> str:
        return "soon gone"

    handle = await short_lived().dispatch()
    async with running(app):
        assert await handle.result(timeout=10) == "soon gone"
    await until(lambda: _gone(app, handle.id), timeout=5)
    with pytest.raises(JobNotFoundError):
        await handle.result(timeout=1)


async def _gone(app: Conveyor, job_id: str) -> bool:
    return await app.job_info(job_id) is None


async def test_unencodable_result_is_dead_not_a_crashed_worker(app: Conveyor) -> None:
    @task(max_attempts=1)
    async def too_big() -> int:
        return 2**70  # beyond msgpack's 64-bit integers

    @task
    async def fine() -> str:
        return "fine"

    bad = await too_big().dispatch()
    async with running(app, concurrency=1):
        with pytest.raises(TaskFailed) as failed:
            await bad.result(timeout=10)
        # the worker's only slot is still alive
        good = await fine().dispatch()
        assert await good.result(timeout=10) == "fine"
    assert failed.value.exc_type == "ResultEncodeError"


# -- cancellation ---------------------------------------------------------------------------


async def test_cancel_a_queued_job(app: Conveyor, names: Names) -> None:
    ran: list[int] = []

    @task
    async def parked(n: int) -> int:
        ran.append(n)
        return n

    parking = names.queue("parked")
    queued = await parked(1).on_queue(parking).dispatch()
    delayed = await parked(2).on_queue(parking).delay(3600).dispatch()
    assert await queued.cancel() is True
    assert await delayed.cancel() is True
    for handle in (queued, delayed):
        assert await handle.status() is JobStatus.CANCELLED
        with pytest.raises(TaskCancelledError):
            await handle.result(timeout=1)
    stats = await app.worker(queues=(parking,), burst=True).run()
    assert stats.reserved == 0
    assert ran == []
    assert await queued.cancel() is False  # already finished
    assert await app.handle(new_job_id()).cancel() is False  # unknown


async def test_cancel_a_running_async_job(app: Conveyor) -> None:
    started = asyncio.Event()
    seen: list[str] = []

    @task
    async def long_async() -> str:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("CancelledError")
            raise
        return "finished"

    async with running(app, lease_seconds=0.3):
        handle = await long_async().dispatch()
        await asyncio.wait_for(started.wait(), 10)
        assert await handle.cancel() is True
        with pytest.raises(TaskCancelledError):
            await handle.result(timeout=5)
    assert seen == ["CancelledError"]
    assert await handle.status() is JobStatus.CANCELLED


async def test_cancel_a_running_sync_job(app: Conveyor) -> None:
    started = threading.Event()
    observed: list[bool] = []

    @task
    def long_sync() -> str:
        ctx = current_job()
        started.set()
        deadline = time.monotonic() + 10
        while not ctx.is_cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        observed.append(ctx.is_cancelled)
        return "finished anyway"

    async with running(app, lease_seconds=0.3):
        handle = await long_sync().dispatch()
        await wait_thread_event(started)
        assert await handle.cancel() is True
        with pytest.raises(TaskCancelledError):
            await handle.result(timeout=5)
    assert observed == [True]
    found = await info(app, handle.id)
    assert found.status is JobStatus.CANCELLED
    assert found.result is None  # the late result was discarded


# -- timeouts -------------------------------------------------------------------------------


async def test_async_task_is_cancelled_at_its_timeout(app: Conveyor) -> None:
    seen: list[str] = []

    @task(timeout=0.1, max_attempts=1)
    async def too_slow() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("CancelledError")
            raise

    handle = await too_slow().dispatch()
    async with running(app):
        with pytest.raises(TaskFailed, match=r"timeout of 0\.1s") as failed:
            await handle.result(timeout=10)
    assert failed.value.exc_type == "conveyor.worker.executors.TaskTimeoutError"
    assert seen == ["CancelledError"]


async def test_sync_task_past_its_timeout_is_marked_failed(app: Conveyor) -> None:
    finished = threading.Event()

    @task(max_attempts=1)
    def too_slow_sync() -> str:
        ctx = current_job()
        deadline = time.monotonic() + 10
        while not ctx.is_cancelled and time.monotonic() < deadline:
            time.sleep(0.005)
        finished.set()  # the thread can't be killed; it sees is_cancelled and returns
        return "too late"

    handle = await too_slow_sync().timeout(0.1).dispatch()
    async with running(app):
        with pytest.raises(TaskFailed, match="thread") as failed:
            await handle.result(timeout=10)
        await wait_thread_event(finished)
    assert failed.value.exc_type == "conveyor.worker.executors.TaskTimeoutError"
    assert await handle.status() is JobStatus.DEAD


# -- leases --------------------------------------------------------------------------------


async def test_lease_renewal_keeps_a_long_job_from_being_redelivered(app: Conveyor) -> None:
    starts: list[int] = []

    @task
    async def long_running() -> int:
        starts.append(current_job().attempt)
        await asyncio.sleep(2.5)  # five times the lease
        return len(starts)

    handle = await long_running().dispatch()
    # two workers competing: either would take the job again if its lease lapsed. (A
    # lease of 0.2 s, renewed every 67 ms, was lost on a busy 2-core machine when one
    # renewal of a private MySQL server took longer than that.)
    async with running(app, lease_seconds=0.5), running(app, lease_seconds=0.5):
        assert await handle.result(timeout=15) == 1
    assert starts == [1]
    assert (await info(app, handle.id)).attempts == 1


async def _reserve_and_abandon(app: Conveyor, queue: str, lease: float) -> None:
    """Play a worker that reserves a job and dies: wait for the job, never complete it."""
    async with asyncio.timeout(5):
        while not await app.driver.reserve([queue], 1, lease, "doomed-worker"):
            await asyncio.sleep(0.01)
    await asyncio.sleep(lease * 1.5)


async def test_poison_pill_goes_to_the_dead_letters(app: Conveyor, names: Names) -> None:
    ran: list[int] = []

    @task(max_attempts=10)
    async def crashes_workers(n: int) -> None:
        ran.append(n)

    poison = names.queue("poison")
    handle = await crashes_workers(1).on_queue(poison).dispatch()
    for _ in range(3):  # default poison_threshold
        await _reserve_and_abandon(app, poison, lease=0.05)
    async with running(app, queues=(poison,)):
        with pytest.raises(TaskFailed, match="died 3 times") as failed:
            await handle.result(timeout=10)
    assert failed.value.exc_type == "PoisonPill"
    assert ran == []


async def test_a_job_whose_worker_died_is_delivered_again(app: Conveyor, names: Names) -> None:
    attempts: list[int] = []

    @task(max_attempts=3)
    async def survivor() -> str:
        attempts.append(current_job().attempt)
        return "done"

    orphans = names.queue("orphans")
    handle = await survivor().on_queue(orphans).dispatch()
    await _reserve_and_abandon(app, orphans, lease=0.05)
    async with running(app, queues=(orphans,)):
        assert await handle.result(timeout=10) == "done"
    assert attempts == [2]  # the dead worker's attempt counted


# -- untrusted messages ------------------------------------------------------------------------

guarded_calls: list[tuple[str, str]] = []


@task
async def guarded(to: str, subject: str) -> None:
    guarded_calls.append((to, subject))


def _payload(
    app: Conveyor, job_id: str, task_name: str, args: Any, v: int = 1, max_attempts: int = 3
) -> bytes:
    envelope = Envelope(
        v=v,
        id=job_id,
        task=task_name,
        queue=app.settings.default_queue,
        args=msgspec.Raw(app.codec.encode(args)),
        max_attempts=max_attempts,
        enqueued_at=time.time(),
    )
    return app.codec.encode_envelope(envelope)


UNTRUSTED: list[tuple[str, Callable[[Conveyor, str], tuple[str, bytes]], str, str]] = [
    (
        "unknown-task",
        lambda app, i: ("os.system", _payload(app, i, "os.system", {"command": "rm -rf /"})),
        "UnknownTask",
        "'os.system' is not registered",
    ),
    ("garbage", lambda app, i: (guarded.name, b"\x00\xffnot a message"), "DecodeError", "envelope"),
    (
        "future-version",
        lambda app, i: (guarded.name, _payload(app, i, guarded.name, {}, v=2)),
        "DecodeError",
        "version 2",
    ),
    (
        "no-attempts",  # docs/wire-format.md: max_attempts >= 1
        lambda app, i: (
            guarded.name,
            _payload(app, i, guarded.name, {"to": "a", "subject": "b"}, max_attempts=0),
        ),
        "DecodeError",
        "max_attempts",
    ),
    (
        "wrong-type",
        lambda app, i: (guarded.name, _payload(app, i, guarded.name, {"to": 1, "subject": "x"})),
        "ArgumentError",
        "$.to",
    ),
    (
        "missing-argument",
        lambda app, i: (guarded.name, _payload(app, i, guarded.name, {"to": "a@b.c"})),
        "ArgumentError",
        "subject",
    ),
    (
        "extra-argument",
        lambda app, i: (
            guarded.name,
            _payload(app, i, guarded.name, {"to": "a", "subject": "b", "admin": True}),
        ),
        "ArgumentError",
        "admin",
    ),
    (
        "args-not-a-map",
        lambda app, i: (guarded.name, _payload(app, i, guarded.name, ["a", "b"])),
        "ArgumentError",
        "arguments don't match",
    ),
]


@pytest.mark.parametrize(
    ("build", "reason", "detail"),
    [case[1:] for case in UNTRUSTED],
    ids=[case[0] for case in UNTRUSTED],
)
async def test_untrusted_messages_are_dead_lettered_never_run(
    app: Conveyor,
    build: Callable[[Conveyor, str], tuple[str, bytes]],
    reason: str,
    detail: str,
) -> None:
    guarded_calls.clear()
    job_id = new_job_id()
    task_name, payload = build(app, job_id)
    # written to the broker by "something else", not through dispatch()
    queue = app.settings.default_queue
    await app.driver.enqueue([NewJob(job_id, task_name, queue, payload)])
    stats = await app.worker(burst=True).run()
    assert stats.dead == 1
    assert guarded_calls == []
    dead = await app.dead_letters(queue=queue)
    assert [d.id for d in dead] == [job_id]
    assert dead[0].error is not None
    assert dead[0].error.type == reason
    assert detail in dead[0].error.message


# -- shutdown --------------------------------------------------------------------------------


async def test_graceful_stop_releases_prefetched_jobs_without_using_an_attempt(
    app: Conveyor,
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    ran: list[str] = []

    @task
    async def step(name: str) -> str:
        ran.append(name)
        if name == "first":
            started.set()
            await release.wait()
        return name

    first = await step("first").dispatch()
    second = await step("second").dispatch()
    worker = app.worker(concurrency=1, prefetch=1)
    run = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(started.wait(), 10)
        # the second job is prefetched: leased to this worker, not started
        await until(lambda: _status_is(app, second.id, JobStatus.ACTIVE))
        worker.stop()
        await until(lambda: _status_is(app, second.id, JobStatus.QUEUED))
        assert (await info(app, second.id)).attempts == 0  # the attempt was given back
    finally:
        release.set()
        stats = await asyncio.wait_for(run, 15)
    assert stats.released == 1
    assert ran == ["first"]
    assert await first.result(timeout=5) == "first"  # in-flight work finished

    async with running(app):
        assert await second.result(timeout=10) == "second"
    assert (await info(app, second.id)).attempts == 1


async def _status_is(app: Conveyor, job_id: str, status: JobStatus) -> bool:
    found = await app.job_info(job_id)
    return found is not None and found.status is status


# -- volume, dead-letter management, order ------------------------------------------------------


async def test_dispatch_many_of_a_thousand_jobs_all_run(app: Conveyor, names: Names) -> None:
    seen: set[int] = set()
    done = asyncio.Event()

    @task
    async def tick(i: int) -> int:
        seen.add(i)
        if len(seen) == 1000:
            done.set()
        return i

    handles = await conveyor.dispatch_many([tick(i) for i in range(1000)])
    assert len({h.id for h in handles}) == 1000
    async with running(app, concurrency=50):
        await asyncio.wait_for(done.wait(), 30)
    assert seen == set(range(1000))
    assert await handles[0].result(timeout=5) == 0
    assert await handles[-1].result(timeout=5) == 999
    counts = {q.queue: q[JobStatus.SUCCEEDED] for q in await app.stats()}
    assert counts[names.queue()] == 1000


async def test_dead_letters_list_retry_and_purge(app: Conveyor, names: Names) -> None:
    healed: set[int] = set()

    @task(max_attempts=1)
    async def fragile(n: int) -> int:
        if n not in healed:
            raise Fail(f"broken {n}")
        return n

    qa, qb = names.queue("dl-a"), names.queue("dl-b")
    h1 = await fragile(1).on_queue(qa).dispatch()
    h2 = await fragile(2).on_queue(qa).dispatch()
    h3 = await fragile(3).on_queue(qb).dispatch()
    stats = await app.worker(queues=(qa, qb), burst=True).run()
    assert stats.dead == 3

    async def ours() -> list[str]:
        # every dead letter of the broker, oldest first; only this test's are compared
        mine = {h1.id, h2.id, h3.id}
        return [d.id for d in await app.dead_letters(limit=10_000) if d.id in mine]

    assert await ours() == [h1.id, h2.id, h3.id]
    dead = await app.dead_letters(queue=qa) + await app.dead_letters(queue=qb)
    for d, n in zip(dead, (1, 2, 3), strict=True):
        assert d.status is JobStatus.DEAD
        assert d.attempts == 1
        assert d.error is not None
        assert (d.error.type, d.error.message) == ("conveyor.core.signals.Fail", f"broken {n}")
        assert "raise Fail" in d.error.traceback
    assert [d.id for d in await app.dead_letters(queue=qa)] == [h1.id, h2.id]
    assert [d.id for d in await app.dead_letters(queue=qa, limit=1, offset=1)] == [h2.id]

    healed.add(1)
    assert await app.retry_dead(h1.id) == 1
    assert await app.retry_dead(new_job_id()) == 0
    assert await h1.status() in (JobStatus.QUEUED, JobStatus.SCHEDULED)
    await app.worker(queues=(qa, qb), burst=True).run()
    assert await h1.result(timeout=5) == 1
    assert await ours() == [h2.id, h3.id]

    assert await app.purge_dead(queue=qb) == 1
    assert await ours() == [h2.id]
    healed.add(2)
    assert await app.retry_dead(queue=qa) == 1  # every dead job of the queue
    await app.worker(queues=(qa, qb), burst=True).run()
    assert await h2.result(timeout=5) == 2
    assert await ours() == []
    assert await app.purge_dead(queue=qa) == 0
    with pytest.raises(JobNotFoundError):
        await h3.status()


async def test_priorities_within_a_queue_and_queue_order(app: Conveyor, names: Names) -> None:
    order: list[str] = []

    @task
    async def record(label: str) -> None:
        order.append(label)

    for label, priority in [("p5", 5), ("p0", 0), ("p9", 9), ("p1", 1), ("p5-later", 5)]:
        await record(label).priority(priority).dispatch()
    high, default, low = names.queue("high"), names.queue(), names.queue("low")
    await record("low-queue").on_queue(low).priority(0).dispatch()
    await record("high-queue").on_queue(high).priority(9).dispatch()
    # one job at a time, nothing reserved ahead: the order of reservation is the order run
    worker = app.worker(queues=(high, default, low), concurrency=1, prefetch=0, burst=True)
    stats = await worker.run()
    assert stats.succeeded == 7
    assert order == ["high-queue", "p0", "p1", "p5", "p5-later", "p9", "low-queue"]


async def test_sync_and_async_tasks_share_a_worker(app: Conveyor) -> None:
    @task
    def blocking(n: int) -> int:
        time.sleep(0.01)
        return n * 2

    @task
    async def non_blocking(n: int) -> int:
        await asyncio.sleep(0.01)
        return n * 3

    handles = await conveyor.dispatch_many(
        [blocking(i) for i in range(10)] + [non_blocking(i) for i in range(10)]
    )
    async with running(app):
        results = [await h.result(timeout=10) for h in handles]
    assert results == [i * 2 for i in range(10)] + [i * 3 for i in range(10)]
