"""The child side of the process pool: the loop each pool process runs.

Frames between parent and child are msgspec msgpack structs, length-prefixed on the
child's pipe; job arguments and results stay codec bytes end to end (nothing from a
message is ever pickled). See :mod:`conveyor.worker.process_pool` for the design.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import os
import signal
import struct
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Literal

import msgspec

from conveyor.codec import Codec, get_codec
from conveyor.core.context import JobContext, set_current_job
from conveyor.core.registry import registry
from conveyor.core.signals import Fail, Retry, Snooze
from conveyor.exceptions import ConfigurationError

OutcomeKind = Literal["ok", "error", "retry", "snooze", "fail", "timeout", "crashed"]
_HEADER = struct.Struct("!Q")


class _Run(msgspec.Struct, tag="run", array_like=True):
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
    """The cancel flag shared with the parent, as the ``threading.Event`` JobContext holds."""

    def __init__(self, value: ctypes.c_bool) -> None:
        super().__init__()
        self._value = value

    def is_set(self) -> bool:
        return bool(self._value.value)


async def _execute(run: _Run, codec: Codec, fd: int, flag: threading.Event) -> _Done:
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

    loop = asyncio.get_running_loop()
    ctx = JobContext(
        *run.job, _reporter=report, _loop=loop, cancel_flag=flag, sync_reporter=report_sync
    )
    set_current_job(ctx)
    try:
        if task.is_async:
            value = await task.invoke(positional, keywords)
        else:
            # a child runs one job at a time: a sync task may block this loop, which
            # saves a thread hop per job (progress frames are written synchronously)
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
    inbox: Connection, outbox: Connection, cancel: ctypes.c_bool, modules: list[str], codec: str
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
                try:
                    done = runner.run(_execute(msg, codec_, fd, flag))
                except BaseException as exc:  # should_retry() itself raised
                    done = _failed("error", exc, retryable=False)
                _write_frame(fd, done)
    except (EOFError, OSError):  # the parent is gone
        pass
