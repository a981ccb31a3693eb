"""Defining tasks: names, options, modes, the registry, and class-based ``Task[R]``."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import ClassVar

import pytest

from conveyor import ArgumentError, ConfigurationError, Conveyor, JobStatus, Task, TaskFailed, task
from conveyor.core.clock import ManualClock
from conveyor.core.registry import registry
from conveyor.core.task import Mode, TaskDef
from conveyor.testing import assert_dispatched


@task
async def greet(name: str) -> str:
    """Say hello."""
    return f"hello {name}"


@task(name="custom.tasks.shout")
def shout(text: str) -> str:
    return text.upper()


class SendReport(Task[str]):
    queue = "reports"
    max_attempts = 3

    async def handle(self, user_id: int) -> str:
        return f"report for {user_id}"


# -- names and the registry -----------------------------------------------------------


def test_name_defaults_to_module_and_qualname() -> None:
    assert greet.name == f"{__name__}.greet"
    assert registry.get(greet.name) is greet


def test_name_override() -> None:
    assert shout.name == "custom.tasks.shout"
    assert registry.get("custom.tasks.shout") is shout
    assert shout.origin == f"{__name__}.shout"


def test_local_functions_get_their_qualname() -> None:
    @task
    async def inner() -> None:
        return None

    assert inner.name == f"{__name__}.test_local_functions_get_their_qualname.<locals>.inner"


def test_a_name_taken_by_another_function_is_a_configuration_error() -> None:
    name = f"dup.{uuid.uuid4().hex}"

    @task(name=name)
    async def first() -> None:
        return None

    with pytest.raises(ConfigurationError, match="already used"):

        @task(name=name)
        async def second() -> None:
            return None

    assert registry.get(name) is first


def test_redefining_the_same_function_is_not_a_conflict() -> None:
    # e.g. a module imported twice, or a test body run again: same origin, same name
    defs = []
    for _ in range(2):

        @task
        async def again() -> None:
            return None

        defs.append(again)
    assert registry.get(defs[1].name) is defs[1]


def test_the_undecorated_function_is_available() -> None:
    assert greet.fn.__name__ == "greet"
    assert greet.__doc__ == "Say hello."
    assert shout.fn("abc") == "ABC"


async def test_fn_runs_the_code_directly() -> None:
    assert await greet.fn("bob") == "hello bob"


def test_modes() -> None:
    @task
    async def a() -> None:
        return None

    @task
    def s() -> None:
        return None

    @task(process=True)
    def p() -> None:
        return None

    assert (a.mode, s.mode, p.mode) == (Mode.ASYNC, Mode.THREAD, Mode.PROCESS)
    assert repr(a).endswith("(async)>")


def test_options_are_normalised() -> None:
    @task(timeout=timedelta(minutes=1), retry_on=OSError, result_ttl=timedelta(hours=1))
    async def t() -> None:
        return None

    assert t.options.timeout == 60.0
    assert t.options.retry_on == (OSError,)
    assert t.options.result_ttl == 3600.0


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"priority": 10}, {"priority": -1}, {"timeout": 0}],
)
def test_bad_options_are_configuration_errors(options: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError):
        task(**options)  # type: ignore[call-overload]


def test_task_decorates_functions_only() -> None:
    with pytest.raises(ConfigurationError):
        task(greet)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError):
        task()(42)  # type: ignore[call-overload]


# -- class-based tasks -----------------------------------------------------------------


def test_class_based_task_is_registered_like_a_function_task() -> None:
    definition = SendReport.definition
    assert isinstance(definition, TaskDef)
    assert definition.name == f"{__name__}.SendReport"
    assert definition.fn is SendReport.handle
    assert definition.options.queue == "reports"
    assert definition.options.max_attempts == 3
    assert list(definition.signature.parameters) == ["user_id"]  # self dropped


def test_class_based_task_checks_handles_signature() -> None:
    with pytest.raises(ArgumentError, match="unexpected keyword argument 'userid'"):
        SendReport(userid=1)
    with pytest.raises(ArgumentError):
        SendReport()
    assert SendReport(7).as_dispatch().args == {"user_id": 7}


async def test_class_based_task_dispatches_and_runs(app: Conveyor) -> None:
    handle = await SendReport(user_id=1).on_queue("low").dispatch()
    default = await SendReport(user_id=2).dispatch()
    assert (await handle.info()).queue == "low"
    assert (await default.info()).queue == "reports"
    assert_dispatched(SendReport, user_id=1)
    await app.drain()
    assert await handle.result() == "report for 1"
    assert await default.result() == "report for 2"


async def test_class_based_task_wrong_type_fails_at_dispatch(app: Conveyor) -> None:
    with pytest.raises(ArgumentError, match="user_id"):
        await SendReport(user_id="one").dispatch()


async def test_class_options_chain(app: Conveyor) -> None:
    handle = await SendReport(user_id=3).options(max_attempts=9, priority=0, delay=5).dispatch()
    info = await handle.info()
    assert (info.priority, info.status) == (0, JobStatus.SCHEDULED)


class Flaky(Task[int]):
    """Fails the first ``failures`` attempts; hooks record what the worker asked."""

    max_attempts = 4
    calls: ClassVar[list[int]] = []
    hook_calls: ClassVar[list[tuple[str, object]]] = []
    failures = 2

    async def handle(self, n: int) -> int:
        Flaky.calls.append(n)
        if len(Flaky.calls) <= Flaky.failures:
            raise ConnectionError(f"flaky {len(Flaky.calls)}")
        if n < 0:
            raise ValueError("negative")
        return n * 2

    def should_retry(self, exc: BaseException) -> bool:
        Flaky.hook_calls.append(("should_retry", type(exc).__name__))
        return isinstance(exc, ConnectionError)

    def backoff(self, attempt: int) -> float:
        Flaky.hook_calls.append(("backoff", attempt))
        return 100.0 * attempt

    async def failed(self, exc: BaseException) -> None:
        Flaky.hook_calls.append(("failed", str(exc)))


@pytest.fixture
def flaky() -> type[Flaky]:
    Flaky.calls = []
    Flaky.hook_calls = []
    Flaky.failures = 2
    return Flaky


async def test_hooks_should_retry_and_backoff_steer_retries(
    app: Conveyor, conveyor_clock: ManualClock, flaky: type[Flaky]
) -> None:
    start = conveyor_clock.now()
    handle = await flaky(n=5).dispatch()
    await app.drain()
    assert await handle.result() == 10
    assert flaky.calls == [5, 5, 5]
    assert flaky.hook_calls == [
        ("should_retry", "ConnectionError"),
        ("backoff", 1),
        ("should_retry", "ConnectionError"),
        ("backoff", 2),
    ]
    # the clock moved exactly by the hook's delays: 100 s, then 200 s
    assert conveyor_clock.now() - start == pytest.approx(300.0)
    assert (await handle.info()).attempts == 3


async def test_should_retry_false_is_dead_at_once_and_failed_is_called(
    app: Conveyor, flaky: type[Flaky]
) -> None:
    flaky.failures = 0
    handle = await flaky(n=-1).dispatch()
    await app.drain()
    with pytest.raises(TaskFailed, match="negative") as info:
        await handle.result()
    assert info.value.exc_type == "ValueError"
    assert flaky.calls == [-1]
    assert flaky.hook_calls == [("should_retry", "ValueError"), ("failed", "negative")]


async def test_failed_hook_runs_once_after_the_last_attempt(
    app: Conveyor, flaky: type[Flaky]
) -> None:
    flaky.failures = 99
    handle = await flaky(n=1).dispatch()
    await app.drain()
    with pytest.raises(TaskFailed, match="flaky 4"):
        await handle.result()
    assert flaky.calls == [1, 1, 1, 1]
    assert [c for c in flaky.hook_calls if c[0] == "failed"] == [("failed", "flaky 4")]
    assert [c for c in flaky.hook_calls if c[0] == "backoff"] == [
        ("backoff", 1),
        ("backoff", 2),
        ("backoff", 3),
    ]


async def test_function_task_options_backoff_callable_and_retry_on(
    app: Conveyor, conveyor_clock: ManualClock
) -> None:
    seen: list[str] = []

    @task(max_attempts=3, backoff=lambda attempt: 7.0, retry_on=(KeyError,))
    async def picky(kind: str) -> None:
        seen.append(kind)
        raise KeyError(kind) if kind == "key" else LookupError(kind)

    start = conveyor_clock.now()
    retried = await picky("key").dispatch()
    await app.drain()
    assert seen == ["key"] * 3
    assert conveyor_clock.now() - start == pytest.approx(14.0)
    assert (await retried.info()).status is JobStatus.DEAD

    seen.clear()
    not_retried = await picky("lookup").dispatch()
    await app.drain()
    assert seen == ["lookup"]  # LookupError is not a KeyError: dead at once
    info = await not_retried.info()
    assert (info.status, info.attempts) == (JobStatus.DEAD, 1)


class BrokenBackoff(Task[str]):
    max_attempts = 2
    calls: ClassVar[list[int]] = []

    async def handle(self, n: int) -> str:
        BrokenBackoff.calls.append(n)
        if len(BrokenBackoff.calls) == 1:
            raise ConnectionError("first try fails")
        return "second try works"

    def backoff(self, attempt: int) -> float:
        raise ZeroDivisionError("bug in the user's backoff")


async def test_a_raising_backoff_hook_falls_back_to_the_default(
    app: Conveyor, caplog: pytest.LogCaptureFixture
) -> None:
    BrokenBackoff.calls = []
    handle = await BrokenBackoff(n=1).dispatch()
    async with asyncio.timeout(10):  # a crashed worker slot would hang drain() here
        await app.drain()
    assert await handle.result() == "second try works"
    assert BrokenBackoff.calls == [1, 1]
    assert "backoff" in caplog.text
