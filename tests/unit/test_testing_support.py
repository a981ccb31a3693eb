"""``conveyor.testing``: eager mode, ``drain()`` on a manual clock, assertions, fixtures."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

import conveyor
from conveyor import ConfigurationError, Conveyor, Fail, JobStatus, Task, TaskFailed, task
from conveyor.core import dispatch as core_dispatch
from conveyor.drivers.base import NewJob
from conveyor.testing import ManualClock, assert_dispatched, assert_not_dispatched, dispatched

pytest_plugins = ["pytester"]


@dataclass
class Address:
    city: str
    zip: str


@task
async def notify(user_id: int, at: datetime, channel: str = "email") -> str:
    return f"{user_id}@{channel}"


@task
async def other_task(x: int) -> int:
    return x


@task
def add(a: int, b: int) -> int:
    return a + b


@task
async def ship(to: Address, items: tuple[str, ...]) -> None:
    return None


class Rebuild(Task[None]):
    async def handle(self, index: str) -> None:
        return None


WHEN = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

# -- eager mode ------------------------------------------------------------------------


async def test_eager_mode_runs_inline_and_the_handle_is_done() -> None:
    app = Conveyor("memory://", eager=True)  # no clock given: must not wait on the wall clock
    async with asyncio.timeout(5):
        handle = await add(2, 3).using(app).dispatch()
        assert await handle.status() is JobStatus.SUCCEEDED
        assert await handle.result(timeout=0) == 5
        second = await add(4, 5).using(app).dispatch()
        assert await second.result(timeout=0) == 9


async def test_eager_mode_failure_is_already_final() -> None:
    @task
    async def refuse() -> None:
        raise Fail("no")

    app = Conveyor("memory://", eager=True)
    async with asyncio.timeout(5):
        handle = await refuse().using(app).dispatch()
        assert await handle.status() is JobStatus.DEAD
        with pytest.raises(TaskFailed, match="no"):
            await handle.result(timeout=0)


async def test_eager_mode_as_the_default_app() -> None:
    previous = core_dispatch._default_app
    app = conveyor.init("memory://", eager=True)
    try:
        async with asyncio.timeout(5):
            handle = await add.dispatch(1, 1)
            assert await handle.result(timeout=0) == 2
        assert conveyor.get_app() is app
    finally:
        core_dispatch.set_default_app(previous)


async def test_eager_mode_never_waits_for_delays_or_backoff() -> None:
    attempts: list[int] = []

    @task(max_attempts=3, backoff=30.0)
    async def flaky_inline() -> str:
        attempts.append(len(attempts) + 1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return "up"

    app = Conveyor("memory://", eager=True)
    wall = time.perf_counter()
    async with asyncio.timeout(5):
        retried = await flaky_inline().using(app).dispatch()
        delayed = await add(1, 1).delay(timedelta(hours=1)).using(app).dispatch()
    assert time.perf_counter() - wall < 2
    assert await retried.result(timeout=0) == "up"
    assert attempts == [1, 2, 3]
    assert await delayed.result(timeout=0) == 2


def test_eager_mode_needs_memory() -> None:
    with pytest.raises(ConfigurationError, match="memory"):
        Conveyor("sqlite:///never.db", eager=True)


# -- drain -------------------------------------------------------------------------------


async def test_drain_runs_delayed_jobs_by_moving_the_clock(
    app: Conveyor, conveyor_clock: ManualClock
) -> None:
    start = conveyor_clock.now()
    later = await add(1, 1).delay(timedelta(hours=2)).dispatch()
    sooner = await add(2, 2).delay(60).dispatch()
    now = await add(3, 3).dispatch()
    wall = time.perf_counter()
    stats = await app.drain()
    assert time.perf_counter() - wall < 5
    assert stats.succeeded == 3
    assert [await h.result() for h in (later, sooner, now)] == [2, 4, 6]
    # the clock jumped to the last due time, no further
    assert conveyor_clock.now() == pytest.approx(start + 7200)


async def test_drain_leaves_the_clock_alone_when_nothing_is_delayed(
    app: Conveyor, conveyor_clock: ManualClock
) -> None:
    start = conveyor_clock.now()

    @task(result_ttl=30)
    async def short_lived() -> int:
        return 1

    handle = await short_lived().dispatch()
    await app.drain()
    # a finished job's old lease must not make drain() jump the clock past the result's ttl
    assert conveyor_clock.now() == start
    assert await handle.result() == 1


async def test_drain_skips_cancelled_delayed_jobs(
    app: Conveyor, conveyor_clock: ManualClock
) -> None:
    start = conveyor_clock.now()
    handle = await add(1, 2).delay(timedelta(days=3)).dispatch()
    assert await handle.cancel() is True
    stats = await app.drain()
    assert stats.finished == 0
    assert conveyor_clock.now() == start
    assert await handle.status() is JobStatus.CANCELLED


async def test_drain_runs_retries_to_the_end(app: Conveyor, conveyor_clock: ManualClock) -> None:
    attempts: list[float] = []

    @task(max_attempts=5, backoff=600.0)
    async def eventually() -> str:
        attempts.append(conveyor_clock.now())
        if len(attempts) < 5:
            raise ConnectionError("down")
        return "up"

    handle = await eventually().dispatch()
    stats = await app.drain()
    assert (stats.retried, stats.succeeded) == (4, 1)
    assert await handle.result() == "up"
    assert all(b >= a for a, b in itertools.pairwise(attempts))


async def test_drain_of_named_queues_only(app: Conveyor) -> None:
    a = await add(1, 0).on_queue("a").dispatch()
    b = await add(2, 0).on_queue("b").dispatch()
    await app.drain(["a"])
    assert await a.status() is JobStatus.SUCCEEDED
    assert await b.status() is JobStatus.QUEUED


async def test_drain_of_an_empty_app(app: Conveyor) -> None:
    stats = await app.drain()
    assert stats.finished == 0


# -- assertions on dispatches ---------------------------------------------------------------


async def test_assert_dispatched_matches_decoded_arguments(app: Conveyor) -> None:
    await notify(user_id=1, at=WHEN).dispatch()
    await notify(2, WHEN, "sms").dispatch()
    found = assert_dispatched(notify, user_id=1)
    assert found == {"user_id": 1, "at": WHEN, "channel": "email"}  # defaults filled in
    assert_dispatched(notify, user_id=2, channel="sms", at=WHEN)
    assert_dispatched(notify, at=WHEN)  # decoded as a datetime, not a string
    assert_dispatched(notify)
    assert_not_dispatched(other_task)
    assert_not_dispatched(notify, user_id=3)
    assert dispatched(notify) == [
        {"user_id": 1, "at": WHEN, "channel": "email"},
        {"user_id": 2, "at": WHEN, "channel": "sms"},
    ]


async def test_assert_dispatched_failure_lists_what_was_dispatched(app: Conveyor) -> None:
    await notify(user_id=1, at=WHEN).dispatch()
    await other_task(5).on_queue("side").dispatch()
    with pytest.raises(AssertionError) as info:
        assert_dispatched(notify, user_id=99)
    message = str(info.value)
    assert f"expected a dispatch of {notify.name}(user_id=99)" in message
    assert f"{notify.name} on 'default'" in message
    assert "'user_id': 1" in message
    assert f"{other_task.name} on 'side': {{'x': 5}}" in message


def test_assert_dispatched_when_nothing_was(app: Conveyor) -> None:
    with pytest.raises(AssertionError, match="nothing was dispatched"):
        assert_dispatched(other_task)


async def test_assert_not_dispatched_failure(app: Conveyor) -> None:
    await other_task(1).dispatch()
    with pytest.raises(AssertionError, match=r"expected no dispatch .* found 1"):
        assert_not_dispatched(other_task)
    with pytest.raises(AssertionError):
        assert_not_dispatched(other_task, x=1)
    assert_not_dispatched(other_task, x=2)


async def test_assertions_on_structured_and_class_based_tasks(app: Conveyor) -> None:
    await ship(Address("Paris", "75001"), ("a", "b")).dispatch()
    await Rebuild(index="users").dispatch()
    assert_dispatched(ship, to=Address("Paris", "75001"), items=("a", "b"))
    assert_dispatched(Rebuild, index="users")
    assert dispatched(Rebuild) == [{"index": "users"}]


async def test_assert_dispatched_rejects_unknown_parameters(app: Conveyor) -> None:
    await other_task(1).dispatch()
    with pytest.raises(TypeError, match="no parameter"):
        assert_dispatched(other_task, y=1)
    with pytest.raises(TypeError, match="no parameter"):
        assert_not_dispatched(other_task, y=1)  # a typo must not make it pass


async def test_assertions_with_an_explicit_app(app: Conveyor) -> None:
    other = Conveyor("memory://")
    await other_task(7).using(other).dispatch()
    assert_not_dispatched(other_task)
    assert_dispatched(other_task, other, x=7)
    assert dispatched(other_task, app=other) == [{"x": 7}]


async def test_hand_written_jobs_do_not_break_the_listing(app: Conveyor) -> None:
    await app.connect()
    await app.driver.enqueue([NewJob("raw-1", "someone.else", "default", b"\xc1garbage")])
    await other_task(1).dispatch()
    assert dispatched(other_task) == [{"x": 1}]
    with pytest.raises(AssertionError, match="undecodable"):
        assert_dispatched(other_task, x=2)


def test_assertions_need_an_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_dispatch, "_default_app", None)
    with pytest.raises(RuntimeError, match="no app"):
        dispatched(other_task)


def test_assertions_need_a_task() -> None:
    with pytest.raises(TypeError, match="expected a task"):
        dispatched(len)  # type: ignore[arg-type]


# -- the pytest plugin ----------------------------------------------------------------------


def test_app_fixture(app: Conveyor, conveyor_clock: ManualClock) -> None:
    assert app.url == "memory://"
    assert app.clock is conveyor_clock
    assert conveyor.get_app() is app
    assert core_dispatch.default_app() is app


def test_plugin_works_in_a_users_suite_and_restores_the_default(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import asyncio
        from conveyor import get_app, task
        from conveyor.core import dispatch
        from conveyor.testing import assert_dispatched

        @task
        def double(n: int) -> int:
            return n * 2

        before = dispatch._default_app

        def test_uses_the_fixture(app, conveyor_clock):
            assert get_app() is app and app.clock is conveyor_clock
            handle = double(21).dispatch_sync()
            assert_dispatched(double, n=21)
            asyncio.run(app.drain())
            assert app.run_sync(handle.result) == 42

        def test_default_restored():
            assert dispatch._default_app is before
        """
    )
    # no pytest-asyncio needed: the plugin works in a plain sync suite
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error"
    )
    result.assert_outcomes(passed=2)
