"""``current_job()`` inside tasks, progress, and the Retry / Snooze / Fail signals."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest

from conveyor import (
    Conveyor,
    Fail,
    JobContext,
    JobStatus,
    Progress,
    Retry,
    Snooze,
    TaskFailed,
    current_job,
    task,
)
from conveyor.core.clock import ManualClock

seen: list[dict[str, Any]] = []


def _snapshot(ctx: JobContext) -> dict[str, Any]:
    return {
        "id": ctx.id,
        "task": ctx.task,
        "queue": ctx.queue,
        "attempt": ctx.attempt,
        "max_attempts": ctx.max_attempts,
        "is_cancelled": ctx.is_cancelled,
        "is_last_attempt": ctx.is_last_attempt,
    }


@pytest.fixture(autouse=True)
def _clear() -> None:
    seen.clear()


@task(max_attempts=2)
async def introspect() -> None:
    seen.append(_snapshot(current_job()))
    if len(seen) == 1:
        raise Retry(delay=1)


@task
def introspect_sync() -> str:
    ctx = current_job()
    seen.append(_snapshot(ctx))
    ctx.report_progress_sync(0.25, "from a thread")
    return "ok"


def test_current_job_outside_a_task_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="only available while a task runs"):
        current_job()


async def test_current_job_fields(app: Conveyor) -> None:
    handle = await introspect().on_queue("ctx").dispatch()
    await app.drain()
    assert seen == [
        {
            "id": handle.id,
            "task": introspect.name,
            "queue": "ctx",
            "attempt": attempt,
            "max_attempts": 2,
            "is_cancelled": False,
            "is_last_attempt": attempt == 2,
        }
        for attempt in (1, 2)
    ]
    with pytest.raises(RuntimeError):
        current_job()  # cleared after the task


async def test_current_job_in_a_sync_task_and_sync_progress(app: Conveyor) -> None:
    handle = await introspect_sync().dispatch()
    await app.drain()
    assert await handle.result() == "ok"
    assert seen[0]["id"] == handle.id
    assert await handle.progress() == Progress(0.25, "from a thread")


async def test_report_progress_is_seen_by_the_handle_while_running(app: Conveyor) -> None:
    reported = asyncio.Event()
    release = asyncio.Event()

    @task
    async def long_job() -> int:
        await current_job().report_progress(0.5, "half way")
        reported.set()
        await release.wait()
        await current_job().report_progress(1.0)
        return 1

    handle = await long_job().dispatch()
    assert await handle.progress() is None
    drain = asyncio.create_task(app.drain())
    await asyncio.wait_for(reported.wait(), 5)
    assert await handle.progress() == Progress(0.5, "half way")
    assert await handle.status() is JobStatus.ACTIVE
    release.set()
    await drain
    assert await handle.progress() == Progress(1.0, None)


@pytest.mark.parametrize("fraction", [-0.1, 1.01])
async def test_progress_is_a_fraction(app: Conveyor, fraction: float) -> None:
    @task(max_attempts=1)
    async def bad_progress() -> None:
        await current_job().report_progress(fraction)

    handle = await bad_progress().dispatch()
    await app.drain()
    with pytest.raises(TaskFailed, match="fraction") as info:
        await handle.result()
    assert info.value.exc_type == "ValueError"


# -- signals ------------------------------------------------------------------------------


async def test_retry_with_delay_uses_an_attempt(app: Conveyor, conveyor_clock: ManualClock) -> None:
    attempts: list[int] = []
    times: list[float] = []

    @task(max_attempts=3)
    async def retry_once() -> str:
        attempts.append(current_job().attempt)
        times.append(conveyor_clock.now())
        if len(attempts) == 1:
            raise Retry(delay=timedelta(seconds=30), reason="not yet")
        return "done"

    handle = await retry_once().dispatch()
    await app.drain()
    assert await handle.result() == "done"
    assert attempts == [1, 2]
    assert times[1] - times[0] == pytest.approx(30.0)
    assert (await handle.info()).attempts == 2


async def test_retry_state_between_attempts(app: Conveyor, conveyor_clock: ManualClock) -> None:
    @task(max_attempts=3)
    async def later() -> None:
        raise Retry(delay=60)

    handle = await later().dispatch()
    # run only what is due now: the retry is 60 s away
    await app.worker(burst=True, ack_interval=0).run()
    info = await handle.info()
    assert (info.status, info.attempts) == (JobStatus.RETRYING, 1)
    assert info.run_at == pytest.approx(conveyor_clock.now() + 60)
    assert info.error is not None
    assert info.error.type == "conveyor.core.signals.Retry"


async def test_retry_without_delay_uses_the_backoff(
    app: Conveyor, conveyor_clock: ManualClock
) -> None:
    @task(max_attempts=2, backoff=lambda attempt: 42.0)
    async def retry_backoff() -> None:
        raise Retry()

    start = conveyor_clock.now()
    handle = await retry_backoff().dispatch()
    await app.drain()
    assert conveyor_clock.now() - start == pytest.approx(42.0)
    with pytest.raises(TaskFailed, match="retry requested"):
        await handle.result()  # Retry on the last attempt: dead


async def test_snooze_does_not_use_an_attempt(app: Conveyor, conveyor_clock: ManualClock) -> None:
    attempts: list[int] = []

    @task(max_attempts=1)
    async def sleepy() -> str:
        attempts.append(current_job().attempt)
        if len(attempts) < 4:
            raise Snooze(60)
        return "awake"

    start = conveyor_clock.now()
    handle = await sleepy().dispatch()
    await app.drain()
    assert await handle.result() == "awake"
    assert attempts == [1, 1, 1, 1]  # one attempt allowed, never used up by snoozing
    assert conveyor_clock.now() - start == pytest.approx(180.0)
    assert (await handle.info()).attempts == 1


async def test_snooze_state(app: Conveyor, conveyor_clock: ManualClock) -> None:
    @task
    async def snooze_long() -> None:
        raise Snooze(timedelta(hours=1))

    handle = await snooze_long().dispatch()
    await app.worker(burst=True, ack_interval=0).run()
    info = await handle.info()
    assert (info.status, info.attempts) == (JobStatus.SCHEDULED, 0)
    assert info.run_at == pytest.approx(conveyor_clock.now() + 3600)


async def test_fail_is_dead_at_once(app: Conveyor) -> None:
    calls: list[int] = []

    @task(max_attempts=5)
    async def give_up() -> None:
        calls.append(1)
        raise Fail("bad input")

    handle = await give_up().dispatch()
    await app.drain()
    assert calls == [1]
    with pytest.raises(TaskFailed, match="bad input") as info:
        await handle.result()
    assert info.value.exc_type == "conveyor.core.signals.Fail"
    assert "raise Fail" in info.value.traceback
    dead = await app.dead_letters()
    assert [d.id for d in dead] == [handle.id]
    assert dead[0].attempts == 1


async def test_signals_in_sync_tasks(app: Conveyor) -> None:
    calls: list[str] = []

    @task(max_attempts=5)
    def sync_signals(kind: str) -> str:
        calls.append(kind)
        n = calls.count(kind)
        if kind == "snooze" and n == 1:
            raise Snooze(1)
        if kind == "retry" and n == 1:
            raise Retry(1)
        if kind == "fail":
            raise Fail("sync fail")
        return kind

    handles = [await sync_signals(k).dispatch() for k in ("snooze", "retry", "fail")]
    await app.drain()
    assert await handles[0].result() == "snooze"
    assert (await handles[0].info()).attempts == 1
    assert await handles[1].result() == "retry"
    assert (await handles[1].info()).attempts == 2
    with pytest.raises(TaskFailed, match="sync fail"):
        await handles[2].result()
    assert calls.count("fail") == 1


def test_signal_values() -> None:
    assert Retry().delay is None
    assert Retry(timedelta(minutes=1)).delay == 60.0
    assert Snooze(timedelta(seconds=5)).delay == 5.0
    assert str(Fail("why")) == "why"
    # signals are control flow, not errors
    from conveyor import ConveyorError

    for signal in (Retry, Snooze, Fail):
        assert not issubclass(signal, ConveyorError)


async def test_drain_does_not_wait_in_real_time(app: Conveyor) -> None:
    @task(max_attempts=4, backoff=3600.0)
    async def slow_retries() -> None:
        raise RuntimeError("again")

    start = time.perf_counter()
    await slow_retries().delay(timedelta(days=1)).dispatch()
    stats = await app.drain()
    assert (stats.retried, stats.dead) == (3, 1)
    assert time.perf_counter() - start < 5


async def test_sync_progress_from_an_async_task_is_an_error_not_a_deadlock(app: Conveyor) -> None:
    @task(max_attempts=1)
    async def wrong_progress() -> None:
        current_job().report_progress_sync(0.5)

    handle = await wrong_progress().dispatch()
    await app.drain()
    with pytest.raises(TaskFailed, match="await current_job") as info:
        await handle.result()
    assert info.value.exc_type == "RuntimeError"
