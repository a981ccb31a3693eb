"""``Dispatch[R]``: an immutable fluent chain, argument checks at the call site, enqueue paths."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

import conveyor
from conveyor import ArgumentError, ConfigurationError, Conveyor, Dispatch, JobStatus, task
from conveyor.core.clock import ManualClock
from conveyor.core.job import Envelope
from conveyor.testing import assert_dispatched, dispatched


@task
async def send_email(to: str, subject: str = "Hi") -> str:
    return f"{to}:{subject}"


@task(queue="images", max_attempts=5, timeout=30, priority=2)
def resize(path: str, width: int) -> None:
    return None


def envelope_of(app: Conveyor, job_id: str) -> Envelope:
    for job in app.driver.history:  # type: ignore[attr-defined]
        if job.id == job_id:
            return app.codec.decode_envelope(job.payload)
    raise AssertionError(f"job {job_id} was not enqueued")


# -- the chain ------------------------------------------------------------------------


def test_calling_a_task_builds_a_dispatch_and_runs_nothing() -> None:
    d = send_email("a@b.c", "Yo")
    assert isinstance(d, Dispatch)
    assert d.task is send_email
    assert d.args == {"to": "a@b.c", "subject": "Yo"}
    assert repr(d) == f"<Dispatch {send_email.name}(to='a@b.c', subject='Yo')>"


def test_dispatch_is_immutable() -> None:
    d = send_email(to="a@b.c")
    with pytest.raises(AttributeError, match="immutable"):
        d._queue = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        d.args = {}  # type: ignore[misc]


def _state(d: Dispatch[Any]) -> dict[str, Any]:
    return {slot: getattr(d, slot) for slot in Dispatch.__slots__}


@pytest.mark.parametrize(
    ("method", "value", "attribute", "expected"),
    [
        ("on_queue", "high", "queue", "high"),
        ("delay", 60, "delay_seconds", 60.0),
        ("delay", timedelta(minutes=2), "delay_seconds", 120.0),
        (
            "at",
            datetime(2030, 1, 1, tzinfo=UTC),
            "eta",
            datetime(2030, 1, 1, tzinfo=UTC).timestamp(),
        ),
        ("max_attempts", 7, "attempts_allowed", 7),
        ("timeout", 12.5, "timeout_seconds", 12.5),
        ("timeout", timedelta(seconds=3), "timeout_seconds", 3.0),
        ("priority", 0, "priority_value", 0),
    ],
)
def test_every_chain_method_returns_a_new_dispatch(
    method: str, value: Any, attribute: str, expected: Any
) -> None:
    original = send_email(to="a@b.c")
    before = _state(original)
    changed = getattr(original, method)(value)
    assert changed is not original
    assert isinstance(changed, Dispatch)
    assert getattr(changed, attribute) == expected
    assert _state(original) == before  # the original did not move
    assert changed.args == original.args
    assert changed.task is original.task


def test_using_returns_a_new_dispatch_bound_to_that_app() -> None:
    other = Conveyor("memory://")
    d = send_email(to="a@b.c")
    bound = d.using(other)
    assert bound is not d
    assert bound.app is other
    assert d._app is None


def test_options_sets_several_at_once() -> None:
    d = send_email(to="x").options(
        queue="q", max_attempts=2, timeout=5, priority=1, delay=timedelta(seconds=9)
    )
    assert (d.queue, d.attempts_allowed, d.timeout_seconds, d.priority_value) == ("q", 2, 5.0, 1)
    assert d.delay_seconds == 9.0


def test_delay_and_at_replace_each_other() -> None:
    when = datetime(2031, 5, 1, tzinfo=UTC)
    d = send_email(to="x").delay(30).at(when)
    assert (d.delay_seconds, d.eta) == (0.0, when.timestamp())
    d = d.delay(5)
    assert (d.delay_seconds, d.eta) == (5.0, None)


def test_chain_values_fall_back_to_task_options() -> None:
    d = resize(path="p", width=1)
    assert (d.queue, d.attempts_allowed, d.timeout_seconds, d.priority_value) == (
        "images",
        5,
        30.0,
        2,
    )
    d2 = d.on_queue("fast").max_attempts(1).timeout(1).priority(9)
    assert (d2.queue, d2.attempts_allowed, d2.timeout_seconds, d2.priority_value) == (
        "fast",
        1,
        1.0,
        9,
    )


@pytest.mark.parametrize(
    ("method", "value"),
    [
        ("on_queue", ""),
        ("delay", -1),
        ("max_attempts", 0),
        ("timeout", 0),
        ("timeout", -5),
        ("priority", 10),
        ("priority", -1),
    ],
)
def test_chain_rejects_bad_values(method: str, value: Any) -> None:
    with pytest.raises(ValueError, match=r"."):
        getattr(send_email(to="x"), method)(value)


def test_unique_is_refused_clearly_until_supported() -> None:
    with pytest.raises(ConfigurationError, match="unique"):
        send_email(to="x").unique()


# -- arguments ------------------------------------------------------------------------


def test_wrong_keyword_is_an_argument_error_at_the_call_site() -> None:
    with pytest.raises(ArgumentError, match="too") as info:
        send_email(too="a@b.c")  # type: ignore[call-arg]
    assert isinstance(info.value, TypeError)
    assert send_email.name in str(info.value)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ((), {}),  # missing 'to'
        (("a", "b", "c"), {}),  # too many positional
        (("a",), {"to": "b"}),  # 'to' twice
    ],
)
def test_signature_mismatch_is_a_type_error(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    with pytest.raises(TypeError):
        send_email(*args, **kwargs)


async def test_wrong_type_is_an_error_at_dispatch_and_nothing_is_enqueued(
    app: Conveyor,
) -> None:
    d = send_email(to=1, subject="x")  # type: ignore[arg-type]  # building does not check types
    with pytest.raises(ArgumentError, match=r"\$\.to") as info:
        await d.dispatch()
    assert isinstance(info.value, TypeError)
    assert app.driver.history == []  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value",
    [object(), 2**70, -(2**64)],
    ids=["unencodable", "int-too-big", "int-too-small"],
)
async def test_unencodable_argument_is_an_argument_error(app: Conveyor, value: Any) -> None:
    @task
    async def takes_anything(x: Any) -> None:
        return None

    with pytest.raises(ArgumentError):
        await takes_anything(value).dispatch()
    assert app.driver.history == []  # type: ignore[attr-defined]


# -- enqueueing -----------------------------------------------------------------------


async def test_dispatch_enqueues_what_the_chain_says(
    app: Conveyor, conveyor_clock: ManualClock
) -> None:
    handle = await (
        send_email("a@b.c", "Hi").on_queue("high").delay(60).max_attempts(5).timeout(30).priority(1)
    ).dispatch()
    assert isinstance(handle, conveyor.TaskHandle)
    info = await handle.info()
    assert (info.queue, info.priority, info.status) == ("high", 1, JobStatus.SCHEDULED)
    assert info.run_at == pytest.approx(conveyor_clock.now() + 60)
    env = envelope_of(app, handle.id)
    assert (env.task, env.queue, env.max_attempts, env.timeout) == (send_email.name, "high", 5, 30)
    assert msgspec.msgpack.decode(env.args) == {"to": "a@b.c", "subject": "Hi"}


async def test_dispatch_defaults_come_from_task_then_settings(app: Conveyor) -> None:
    plain = await send_email.dispatch(to="a@b.c")  # the shortcut
    opted = await resize(path="p.png", width=10).dispatch()
    p_info, o_info = await plain.info(), await opted.info()
    assert (p_info.queue, p_info.priority, p_info.status) == ("default", 5, JobStatus.QUEUED)
    assert envelope_of(app, plain.id).max_attempts == app.settings.max_attempts
    assert (o_info.queue, o_info.priority) == ("images", 2)
    assert envelope_of(app, opted.id).max_attempts == 5


async def test_at_schedules_for_that_time(app: Conveyor, conveyor_clock: ManualClock) -> None:
    when = datetime.fromtimestamp(conveyor_clock.now() + 3600, UTC)
    handle = await send_email(to="x").at(when).dispatch()
    info = await handle.info()
    assert info.status is JobStatus.SCHEDULED
    assert info.run_at == pytest.approx(when.timestamp())


async def test_using_sends_to_another_app(app: Conveyor) -> None:
    other = Conveyor("memory://")
    handle = await send_email(to="elsewhere").using(other).dispatch()
    assert dispatched(send_email, app) == []
    assert_dispatched(send_email, other, to="elsewhere")
    assert (await handle.info()).status is JobStatus.QUEUED


async def test_app_task_dispatches_to_its_own_app(app: Conveyor) -> None:
    own = Conveyor("memory://")

    @own.task
    async def bound(n: int) -> int:
        return n

    await bound(1).dispatch()
    assert dispatched(bound) == [{"n": 1}]  # found through the task's own app
    assert app.driver.history == []  # type: ignore[attr-defined]
    await own.drain()


async def test_dispatch_many_is_one_round_trip(
    app: Conveyor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    enqueue = app.driver.enqueue

    async def counting(jobs: Any) -> None:
        calls.append(len(jobs))
        await enqueue(jobs)

    monkeypatch.setattr(app.driver, "enqueue", counting)
    handles = await conveyor.dispatch_many([send_email(to=f"u{i}") for i in range(25)])
    assert calls == [25]
    assert len({h.id for h in handles}) == 25
    assert [a["to"] for a in dispatched(send_email)] == [f"u{i}" for i in range(25)]
    assert await conveyor.dispatch_many([]) == []


async def test_dispatch_many_across_apps_keeps_the_order(app: Conveyor) -> None:
    other = Conveyor("memory://")
    items = [
        send_email(to="a"),
        send_email(to="b").using(other),
        send_email(to="c"),
        send_email(to="d").using(other),
    ]
    handles = await conveyor.dispatch_many(items)
    assert [envelope_of(app, h.id).id for h in (handles[0], handles[2])] == [
        handles[0].id,
        handles[2].id,
    ]
    assert [envelope_of(other, h.id).id for h in (handles[1], handles[3])] == [
        handles[1].id,
        handles[3].id,
    ]


async def test_app_dispatch_many_binds_to_that_app(app: Conveyor) -> None:
    other = Conveyor("memory://")
    handles = await other.dispatch_many([send_email(to="a"), send_email(to="b")])
    assert len(handles) == 2
    assert [a["to"] for a in dispatched(send_email, other)] == ["a", "b"]
    assert dispatched(send_email, app) == []


async def test_payload_over_the_limit_is_refused_at_dispatch() -> None:
    small = Conveyor("memory://", max_payload_bytes=2048)
    with pytest.raises(conveyor.PayloadTooLargeError, match="2048"):
        await send_email(to="x" * 5000).using(small).dispatch()
    assert small.driver.history == []  # type: ignore[attr-defined]


# -- dispatch_sync ----------------------------------------------------------------------


def test_dispatch_sync_without_a_loop(app: Conveyor) -> None:
    handle = send_email(to="sync@b.c").dispatch_sync()
    assert isinstance(handle, conveyor.TaskHandle)
    assert_dispatched(send_email, to="sync@b.c")


def test_dispatch_sync_from_a_plain_thread(app: Conveyor) -> None:
    results: list[Any] = []

    def work() -> None:
        try:
            results.append(send_email(to="thread@b.c").dispatch_sync())
        except BaseException as exc:  # report it to the test thread
            results.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(10)
    assert len(results) == 1
    assert isinstance(results[0], conveyor.TaskHandle)
    assert_dispatched(send_email, to="thread@b.c")


@pytest.mark.parametrize("connected", [False, True])
async def test_dispatch_sync_from_a_running_loops_executor(app: Conveyor, connected: bool) -> None:
    if connected:
        await app.connect()
    loop = asyncio.get_running_loop()
    handle = await loop.run_in_executor(None, lambda: send_email(to="pool@b.c").dispatch_sync())
    assert_dispatched(send_email, to="pool@b.c")
    await app.drain()
    assert await handle.result(timeout=5) == "pool@b.c:Hi"


async def test_dispatch_sync_on_the_loops_own_thread_is_a_clear_error(app: Conveyor) -> None:
    with pytest.raises(RuntimeError, match=r"await .*dispatch\(\)"):
        send_email(to="x").dispatch_sync()
    assert app.driver.history == []  # type: ignore[attr-defined]


async def test_run_sync_refuses_to_block_its_own_loop(app: Conveyor) -> None:
    await app.connect()

    async def nothing() -> int:
        return 1

    with pytest.raises(RuntimeError, match="block"):
        app.run_sync(nothing)
