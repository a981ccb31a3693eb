"""The child side of the process pool: the loop each pool process runs.

Frames between parent and child are msgspec msgpack structs, length-prefixed on the
child's pipe; job arguments and results stay codec bytes end to end (nothing from a
message is ever pickled). See :mod:`conveyor.worker.process_pool` for the design.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import importlib
import os
import signal
import struct
import threading
import traceback
from collections.abc import Awaitable
from multiprocessing.connection import Connection
from typing import Any, Literal

import msgspec

from conveyor.codec import Codec, get_codec
from conveyor.core.context import JobContext, set_current_job
from conveyor.core.registry import registry
from conveyor.core.signals import Fail, Retry, Snooze
from conveyor.exceptions import ConfigurationError

OutcomeKind = Literal["ok", "error", "retry", "snooze", "fail", "timeout", "crashed", "skipped"]
_HEADER = struct.Struct("!Q")


class _Run(msgspec.Struct, tag="run", array_like=True):
    seq: int  # the parent numbers its jobs; cancel and skip flags name a job by it
    name: str
    args: bytes
    job: tuple[str, str, str, int, int]


class _Stop(msgspec.Struct, tag="stop", array_like=True):
    pass


class _Ready(msgspec.Struct, tag="ready", array_like=True):
    pass


class _Fatal(msgspec.Struct, tag="fatal", array_like=True):
    traceback: str


class _Progress(msgspec.Struct, tag="progress", array_like=True):
    fraction: float
    message: str | None


class _Done(msgspec.Struct, tag="done", array_like=True):
    kind: OutcomeKind
    result: bytes | None = None
    delay: float | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    retryable: bool = False


_encode = msgspec.msgpack.Encoder().encode
_to_child = msgspec.msgpack.Decoder(_Run | _Stop)
_from_child = msgspec.msgpack.Decoder(_Ready | _Fatal | _Progress | _Done)


def _type_name(exc: BaseException) -> str:
    module, name = type(exc).__module__, type(exc).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


# -- the child -------------------------------------------------------------------------


def _write_frame(fd: int, frame: msgspec.Struct) -> None:
    payload = _encode(frame)
    view = memoryview(_HEADER.pack(len(payload)) + payload)
    while view:
        view = view[os.write(fd, view) :]


def _failed(
    kind: OutcomeKind, exc: BaseException, retryable: bool, delay: float | None = None
) -> _Done:
    tb = "".join(traceback.format_exception(exc))
    return _Done(kind, None, delay, _type_name(exc), str(exc), tb, retryable)


class _SharedFlag(threading.Event):
    """The cancel flag shared with the parent, as the ``threading.Event`` JobContext holds.

    The parent writes the number of the job it cancels; the flag is set for that job only,
    so a cancel meant for one job can't leak into the next one this child runs.
    """

    def __init__(self, value: ctypes.c_long) -> None:
        super().__init__()
        self._value = value
        self.seq = 0

    def is_set(self) -> bool:
        return self._value.value == self.seq


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def _execute(run: _Run, codec: Codec, fd: int, flag: _SharedFlag, runner: asyncio.Runner) -> _Done:
    """Run one job. A sync task is called right here: no event loop, no thread hop."""
    task = registry.get(run.name)
    if task is None:
        exc = ConfigurationError(f"task {run.name!r} is not registered in the process pool")
        return _failed("error", exc, retryable=False)
    try:
        positional, keywords = task.call_args(codec.decode(run.args, task.args_type))
    except Exception as exc:  # arguments that don't fit won't fit next time either
        return _failed("error", exc, retryable=False)
    running = True

    async def report(fraction: float, message: str | None) -> None:
        if running:  # a thread the task left behind must not talk over the next job
            _write_frame(fd, _Progress(fraction, message))

    def report_sync(fraction: float, message: str | None) -> None:
        if running:
            _write_frame(fd, _Progress(fraction, message))

    flag.seq = run.seq
    ctx = JobContext(
        *run.job,
        _reporter=report,
        _loop=runner.get_loop(),
        cancel_flag=flag,
        sync_reporter=report_sync,
    )
    set_current_job(ctx)
    try:
        if task.is_async:  # in a copy of this context, so current_job() works inside
            coro = _awaited(task.invoke(positional, keywords))
            value = runner.run(coro, context=contextvars.copy_context())
        else:
            value = task.invoke(positional, keywords)
    except Retry as exc:
        return _failed("retry", exc, True, exc.delay)
    except Snooze as exc:
        return _failed("snooze", exc, True, exc.delay)
    except Fail as exc:
        return _failed("fail", exc, False)
    except BaseException as exc:
        return _failed("error", exc, task.should_retry(exc))
    finally:
        running = False
        set_current_job(None)
    try:
        return _Done("ok", codec.encode(value))
    except Exception as exc:
        return _failed("error", exc, retryable=False)


def _child_main(
    inbox: Connection,
    outbox: Connection,
    cancel: ctypes.c_long,
    skip: ctypes.c_long,
    modules: list[str],
    codec: str,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the worker's to handle
    fd = outbox.fileno()
    try:
        for name in modules:
            importlib.import_module(name)
        codec_ = get_codec(codec)
    except BaseException:
        _write_frame(fd, _Fatal(traceback.format_exc()))
        return
    flag = _SharedFlag(cancel)
    try:
        _write_frame(fd, _Ready())
        with asyncio.Runner() as runner:
            while not isinstance(msg := _to_child.decode(inbox.recv_bytes()), _Stop):
                if skip.value == msg.seq:  # its caller gave up while it waited here
                    _write_frame(fd, _Done("skipped"))
                    continue
                try:
                    done = _execute(msg, codec_, fd, flag, runner)
                except BaseException as exc:  # should_retry() itself raised
                    done = _failed("error", exc, retryable=False)
                _write_frame(fd, done)
    except (EOFError, OSError):  # the parent is gone
        pass
