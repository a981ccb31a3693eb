"""Helpers for testing code that dispatches Conveyor tasks.

Three ways to test, from the fastest to the most faithful:

- call the undecorated code: ``await send_email.fn(to="a@b.c", subject="Hi")``;
- an eager app, ``Conveyor("memory://", eager=True)``: ``dispatch()`` runs the job
  inline and the handle is already done;
- a ``memory://`` app and ``await app.drain()``, which runs queued jobs in-process,
  delays and retries included, jumping a :class:`ManualClock` instead of waiting.

Whatever was dispatched to a ``memory://`` app can be asserted on::

    await signup(email="a@b.c")
    assert_dispatched(send_email, to="a@b.c")
    assert_not_dispatched(send_sms)

The pytest plugin (:mod:`conveyor.testing.pytest_plugin`, loaded automatically)
provides the ``app`` and ``conveyor_clock`` fixtures.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec

from conveyor.app import Conveyor
from conveyor.core import dispatch as _dispatch
from conveyor.core.clock import ManualClock
from conveyor.core.task import Task, TaskDef

__all__ = [
    "ManualClock",
    "assert_dispatched",
    "assert_not_dispatched",
    "dispatched",
]

TaskLike = TaskDef[..., Any] | type[Task[Any]]


def _definition(task: TaskLike) -> TaskDef[..., Any]:
    if isinstance(task, TaskDef):
        return task
    definition = getattr(task, "definition", None)
    if isinstance(definition, TaskDef):
        return definition
    raise TypeError(f"expected a task (an @task function or a Task subclass), got {task!r}")


def _app_for(definition: TaskDef[..., Any], app: Conveyor | None) -> Conveyor:
    if app is not None:
        return app
    # the app a dispatch of this task would use, without creating a default app as a side effect
    candidate = definition.app if definition.app is not None else _dispatch._default_app
    if not isinstance(candidate, Conveyor):
        raise RuntimeError(
            f"no app to inspect for {definition.name}: pass app=..., bind the task with "
            "@app.task, or use the `app` fixture of conveyor's pytest plugin"
        )
    return candidate


def _history(app: Conveyor) -> list[Any]:
    history = getattr(app.driver, "history", None)
    if not isinstance(history, list):
        raise TypeError(
            f"{app!r} does not record dispatched jobs; assertions on dispatches need memory://"
        )
    return history


def _arguments(app: Conveyor, definition: TaskDef[..., Any], payload: bytes) -> dict[str, Any]:
    """A job's arguments decoded into the task's types, defaults filled in."""
    codec = app.codec
    envelope = codec.decode_envelope(payload)
    decoded = codec.decode(envelope.args, definition.args_type)
    arguments: dict[str, Any] = {}
    for name, param in definition.signature.parameters.items():
        value = getattr(decoded, name, msgspec.UNSET)
        if value is msgspec.UNSET:
            if param.default is inspect.Parameter.empty:
                continue
            value = param.default
        arguments[name] = value
    return arguments


def dispatched(task: TaskLike, app: Conveyor | None = None) -> list[dict[str, Any]]:
    """The arguments of every job of ``task`` dispatched so far, oldest first.

    Args:
        task: an ``@task`` function or a ``Task`` subclass.
        app: the ``memory://`` app to look at; default: the task's app, else the default app.

    Returns:
        One dict per job, parameter name to value (decoded into the annotated
        types, so ``datetime`` arguments compare as ``datetime``), defaults included.
    """
    definition = _definition(task)
    target = _app_for(definition, app)
    return [
        _arguments(target, definition, job.payload)
        for job in _history(target)
        if job.task == definition.name
    ]


def _describe(target: Conveyor) -> str:
    history = _history(target)
    if not history:
        return "nothing was dispatched"
    lines = []
    for job in history:
        try:
            envelope = target.codec.decode_envelope(job.payload)
            args = target.codec.decode(envelope.args)
        except Exception as exc:  # a hand-written job in a test; show what we can
            args = f"<undecodable: {exc}>"
        lines.append(f"  {job.task} on {job.queue!r}: {args!r}")
    return "dispatched:\n" + "\n".join(lines)


def _check_names(definition: TaskDef[..., Any], args: dict[str, Any]) -> None:
    # a typo must fail loudly: in assert_not_dispatched it would otherwise always pass
    unknown = sorted(set(args) - set(definition.signature.parameters))
    if unknown:
        raise TypeError(f"{definition.name} has no parameter(s) {', '.join(unknown)}")


def _matches(arguments: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(name in arguments and arguments[name] == v for name, v in expected.items())


def assert_dispatched(task: TaskLike, app: Conveyor | None = None, **args: Any) -> dict[str, Any]:
    """Assert a job of ``task`` was dispatched whose arguments include ``args``.

    Only the arguments given are compared, so ``assert_dispatched(send_email)``
    asserts any dispatch of ``send_email``. Returns the matching job's arguments.

    Raises:
        AssertionError: no such job; the message lists what was dispatched.
        TypeError: ``args`` names a parameter the task does not have.
    """
    definition = _definition(task)
    target = _app_for(definition, app)
    _check_names(definition, args)
    for arguments in dispatched(definition, target):
        if _matches(arguments, args):
            return arguments
    wanted = ", ".join(f"{k}={v!r}" for k, v in args.items())
    raise AssertionError(f"expected a dispatch of {definition.name}({wanted}); {_describe(target)}")


def assert_not_dispatched(task: TaskLike, app: Conveyor | None = None, **args: Any) -> None:
    """Assert no job of ``task`` (with arguments including ``args``) was dispatched.

    Raises:
        AssertionError: such a job was dispatched.
        TypeError: ``args`` names a parameter the task does not have.
    """
    definition = _definition(task)
    target = _app_for(definition, app)
    _check_names(definition, args)
    found = [a for a in dispatched(definition, target) if _matches(a, args)]
    if found:
        wanted = ", ".join(f"{k}={v!r}" for k, v in args.items())
        raise AssertionError(
            f"expected no dispatch of {definition.name}({wanted}), found {len(found)}: "
            + "; ".join(repr(a) for a in found)
        )
