"""The process pool: ``size`` child processes for ``@task(process=True)`` jobs.

Why not ``concurrent.futures.ProcessPoolExecutor``: it cannot kill the one process
running a job that overran its timeout (``cancel()`` only works before a job starts),
and one child dying breaks the whole executor (``BrokenProcessPool``). Here each child
is ours: at the deadline it gets SIGKILL and a replacement starts; a death costs one
job (``"crashed"``, with the exit code). The pool never shrinks for good.

Why no pickle: job arguments come from the broker, that is from anyone who can write
to it. The parent forwards the argument bytes untouched; the child decodes them with
the worker's codec into the task's annotated types and encodes the result with it.
Control frames are msgspec msgpack structs. multiprocessing pickles only each child's
start-up configuration (pipe ends, cancel flag, module list, codec name).

- Start method ``forkserver`` on Linux, ``spawn`` elsewhere. A child imports the
  worker's ``modules`` (so its registry has the tasks; a failure is a
  ``ConfigurationError`` from ``start()``), then keeps one ``asyncio.Runner`` for life.
  Sync tasks run in that loop's default thread (``asyncio.to_thread``), so
  ``current_job().report_progress_sync()`` works as in the worker's thread pool.
- ``size`` slots wait in an ``asyncio.Queue``; ``run()`` takes one. A killed, crashed
  or recycled child is replaced in the background and its slot comes back once the
  replacement is ready; a child found dead while idle is replaced before the job.
- Parent to child: ``Connection.send_bytes`` (the idle child is blocked reading). Child
  to parent: length-prefixed frames on a non-blocking pipe read by ``loop.add_reader``.
  Progress frames are coalesced (the newest unseen one is delivered) so a chatty task
  can't grow memory; ``on_progress`` errors are logged, never fail the job.
- Cancellation: each child shares a lock-free boolean with the parent (a killed child
  can't leave it locked). It is cleared when a job starts; while the job runs the
  parent polls ``cancelled.is_set()`` every 50 ms and sets it; the child's
  ``current_job().is_cancelled`` reads it.
- ``timeout`` counts from when a child receives the job, not the wait for a child.
- Tasks in a script run as ``__main__``: forkserver and spawn import the script as
  ``__mp_main__`` in the child (so guard its entry point with ``if __name__ ==
  "__main__":``) and task names map ``__mp_main__`` back to ``__main__``.
- Limits: POSIX only (``add_reader`` on pipes). Children are daemonic, so task code
  can't start multiprocessing children of its own. ``report_progress_sync`` from an
  *async* task deadlocks (as on the worker's loop).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from conveyor.codec import get_codec
from conveyor.exceptions import ConfigurationError
from conveyor.worker.process_child import (
    _HEADER,
    OutcomeKind,
    _child_main,
    _Done,
    _encode,
    _Fatal,
    _from_child,
    _Progress,
    _Ready,
    _Run,
    _Stop,
)

if TYPE_CHECKING:
    from multiprocessing.context import ForkServerContext, SpawnContext

__all__ = ["CancelFlag", "JobInfoLite", "OutcomeKind", "ProcessOutcome", "ProcessPool"]

log = logging.getLogger("conveyor.worker.process_pool")

_POLL = 0.05  # seconds between looks at the caller's cancel flag


class CancelFlag(Protocol):
    """``threading.Event`` or ``asyncio.Event``: anything with ``is_set()``."""

    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class JobInfoLite:
    """What the child's ``current_job()`` shows about the job."""

    id: str
    task: str
    queue: str
    attempt: int
    max_attempts: int


@dataclass(frozen=True, slots=True)
class ProcessOutcome:
    """How a job ended in the pool. ``result`` is the return value encoded with the codec."""

    kind: OutcomeKind
    result: bytes | None = None
    delay: float | None = None  # retry / snooze
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    retryable: bool = False


# -- frames ----------------------------------------------------------------------------


# -- the parent ------------------------------------------------------------------------


def _launch(process: BaseProcess, *child_ends: Connection) -> None:
    try:
        process.start()
    finally:
        for end in child_ends:  # the child has its copies; EOF must mean it is gone
            end.close()


class _Child:
    """One child process, seen from the parent."""

    def __init__(
        self,
        process: BaseProcess,
        to_child: Connection,
        from_child: Connection,
        cancel: ctypes.c_bool,
    ) -> None:
        self.process = process
        self.to_child = to_child
        self.from_child = from_child
        self.cancel = cancel
        self.launched: asyncio.Future[None] | None = None
        self.buffer = bytearray()
        self.progress: _Progress | None = None
        self.reply: _Ready | _Fatal | _Done | None = None
        self.eof = False
        self.wakeup = asyncio.Event()
        self.jobs = 0

    def on_readable(self) -> None:
        try:
            chunk = os.read(self.from_child.fileno(), 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        self.buffer += chunk
        try:
            while len(self.buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(self.buffer)
                if len(self.buffer) < _HEADER.size + size:
                    break
                frame = _from_child.decode(self.buffer[_HEADER.size : _HEADER.size + size])
                del self.buffer[: _HEADER.size + size]
                if isinstance(frame, _Progress):
                    self.progress = frame
                else:
                    self.reply = frame
        except msgspec.DecodeError:
            chunk = b""  # not our protocol: treat the child as lost
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.from_child.fileno())
            self.eof = True
        self.wakeup.set()


class _Slot:
    __slots__ = ("child",)

    def __init__(self) -> None:
        self.child: _Child | None = None


async def _wait_exit(process: BaseProcess, limit: float) -> bool:
    if process.exitcode is not None:
        return True
    loop = asyncio.get_running_loop()
    exited = loop.create_future()

    def wake() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(process.sentinel, wake)
    try:
        async with asyncio.timeout(limit):
            await exited
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(process.sentinel)
    return process.exitcode is not None


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class ProcessPool:
    """``size`` child processes that run process tasks; awaited from the worker's loop."""

    def __init__(
        self,
        size: int,
        modules: Sequence[str],
        codec_name: str,
        max_jobs_per_child: int | None = None,
    ) -> None:
        if size < 1 or (max_jobs_per_child is not None and max_jobs_per_child < 1):
            raise ConfigurationError("process pool size and max_jobs_per_child must be >= 1")
        get_codec(codec_name)  # fail here, not in every child
        self.size = size
        self._modules = list(modules)
        self._codec_name = codec_name
        self._max_jobs = max_jobs_per_child
        self._mp: ForkServerContext | SpawnContext = multiprocessing.get_context("spawn")
        if sys.platform.startswith("linux"):  # no fork of a threaded parent; fast starts
            self._mp = multiprocessing.get_context("forkserver")
        self._slots: list[_Slot] = []
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        self._live: set[_Child] = set()
        self._background: set[asyncio.Task[object]] = set()
        self._all_gone = asyncio.Event()
        self._all_gone.set()  # no children yet
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The process ids of the current children."""
        return [s.child.process.pid for s in self._slots if s.child and s.child.process.pid]

    async def start(self) -> None:
        """Start every child and wait until each has imported the modules."""
        if self._slots or self._closed:
            return
        slots = [_Slot() for _ in range(self.size)]
        started = await asyncio.gather(
            *(self._start_child() for _ in slots), return_exceptions=True
        )
        children = [c for c in started if isinstance(c, _Child)]
        if len(children) < len(slots):
            await asyncio.gather(*(self._discard(c, kill=True) for c in children))
            raise next(e for e in started if isinstance(e, BaseException))
        for slot, child in zip(slots, children, strict=True):
            slot.child = child
            self._idle.put_nowait(slot)
        self._slots = slots

    async def run(
        self,
        task_name: str,
        args: bytes,
        job: JobInfoLite,
        timeout: float | None,
        on_progress: Callable[[float, str | None], Awaitable[None]],
        cancelled: CancelFlag,
    ) -> ProcessOutcome:
        """Run one job in a child; waits for a free child first."""
        if not self._slots:
            raise RuntimeError("ProcessPool.run() before start()")
        slot = await self._idle.get()
        try:
            if self._closed:
                raise RuntimeError("the process pool is closed")
            if slot.child is not None and slot.child.eof:  # died while idle: not this job's fault
                await self._discard(slot.child, kill=True)
                slot.child = None
            if slot.child is None:  # its replacement failed to start: try again now
                slot.child = await self._start_child()
        except BaseException:
            self._idle.put_nowait(slot)
            raise
        child = slot.child
        child.jobs += 1
        run = _Run(task_name, args, (job.id, job.task, job.queue, job.attempt, job.max_attempts))
        try:
            done = await self._exchange(child, run, timeout, on_progress, cancelled)
        except BaseException:  # our caller gave up mid-job: the child can't be reused
            child.process.kill()
            self._retire(slot, kill=True)
            raise
        if done == "timeout":
            self._retire(slot, kill=True)
            message = f"task exceeded its timeout of {timeout:g}s; its process was killed"
            return ProcessOutcome("timeout", None, None, "TimeoutError", message, "", True)
        if done == "crashed":
            await _wait_exit(child.process, 5.0)
            reason = _exit_reason(child.process.exitcode)
            log.warning("process_pool.child_crashed pid=%s %s", child.process.pid, reason)
            self._retire(slot, kill=True)
            message = f"the process running the task died ({reason})"
            return ProcessOutcome("crashed", None, None, "ProcessCrashedError", message, "", True)
        if self._closed or (self._max_jobs is not None and child.jobs >= self._max_jobs):
            self._retire(slot, kill=False)
        else:
            self._idle.put_nowait(slot)
        fields = (done.error_type, done.error_message, done.traceback, done.retryable)
        return ProcessOutcome(done.kind, done.result, done.delay, *fields)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop idle children now, busy ones after their job; SIGKILL any left at the deadline."""
        if self._closed:
            return
        self._closed = True  # from now on run() stops its child after the job, no replacement
        held: list[_Slot] = []
        while not self._idle.empty():
            held.append(slot := self._idle.get_nowait())
            self._retire(slot, kill=False, requeue=False)
        if not await self._wait_gone(timeout):
            for child in list(self._live):
                if child.process.pid is not None and child.process.exitcode is None:
                    child.process.kill()
            await self._wait_gone(15.0)
        while self._background:
            await asyncio.wait(set(self._background))
        for slot in held:  # wake any run() still waiting for a slot: it raises "closed"
            self._idle.put_nowait(slot)

    async def _wait_gone(self, limit: float) -> bool:
        try:
            async with asyncio.timeout(limit):
                await self._all_gone.wait()
        except TimeoutError:
            return False
        return True

    # -- children --------------------------------------------------------------------------

    async def _start_child(self) -> _Child:
        child_in, to_child = self._mp.Pipe(duplex=False)
        from_child, child_out = self._mp.Pipe(duplex=False)
        cancel = self._mp.RawValue(ctypes.c_bool, False)
        config = (child_in, child_out, cancel, self._modules, self._codec_name)
        process = self._mp.Process(target=_child_main, args=config, name="conveyor-process")
        process.daemon = True
        child = _Child(process, to_child, from_child, cancel)
        self._live.add(child)
        self._all_gone.clear()
        loop = asyncio.get_running_loop()
        child.launched = loop.run_in_executor(None, _launch, process, child_in, child_out)
        try:
            await asyncio.shield(child.launched)
            os.set_blocking(from_child.fileno(), False)
            loop.add_reader(from_child.fileno(), child.on_readable)
            while child.reply is None and not child.eof:
                await child.wakeup.wait()
                child.wakeup.clear()
        except BaseException:
            self._spawn(self._discard(child, kill=True))
            raise
        if isinstance(child.reply, _Ready) and not self._closed:
            child.reply = None
            return child
        if isinstance(child.reply, _Ready):
            await self._discard(child, kill=False)
            raise RuntimeError("the process pool is closed")
        fatal = child.reply.traceback if isinstance(child.reply, _Fatal) else ""
        reason = _exit_reason(await self._discard(child, kill=True))
        raise ConfigurationError(
            f"a process-pool child could not import {self._modules} ({reason})\n{fatal}".rstrip()
        )

    async def _exchange(
        self,
        child: _Child,
        run: _Run,
        timeout: float | None,
        on_progress: Callable[[float, str | None], Awaitable[None]],
        cancelled: CancelFlag,
    ) -> _Done | Literal["timeout", "crashed"]:
        loop = asyncio.get_running_loop()
        forwarded = cancelled.is_set()  # a cancel that came before the job is seen at once
        child.cancel.value = forwarded
        child.progress = None
        try:
            child.to_child.send_bytes(_encode(run))
        except OSError:
            pass  # it just died; its EOF says the rest
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            child.wakeup.clear()
            if child.progress is not None:
                progress, child.progress = child.progress, None
                try:  # bounded by the deadline: a slow progress store can't stretch a job
                    async with asyncio.timeout_at(deadline):
                        await on_progress(progress.fraction, progress.message)
                except Exception:
                    log.exception("process_pool.progress_failed")
            if isinstance(reply := child.reply, _Done):
                child.reply = None
                return reply
            if child.eof:
                return "crashed"
            if not forwarded and cancelled.is_set():
                child.cancel.value = forwarded = True
            wait = None if forwarded else _POLL
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    child.process.kill()
                    return "timeout"
                wait = left if wait is None else min(wait, left)
            try:
                async with asyncio.timeout(wait):
                    await child.wakeup.wait()
            except TimeoutError:
                pass

    def _retire(self, slot: _Slot, *, kill: bool, requeue: bool = True) -> None:
        """Stop the slot's child and start a replacement; the slot is free once it's ready."""
        child, slot.child = slot.child, None

        async def replace() -> None:
            try:
                if child is not None:
                    await self._discard(child, kill=kill)
                if not self._closed:
                    slot.child = await self._start_child()
            except Exception:
                if not self._closed:
                    log.exception("process_pool.replacement_failed (the next job retries)")
            finally:
                if requeue:
                    self._idle.put_nowait(slot)

        self._spawn(replace())

    async def _discard(self, child: _Child, *, kill: bool) -> int | None:
        """Stop a child (a stop frame, or SIGKILL), wait for it to exit, release it.

        Returns its exit code (``None`` if it never started or would not die).
        """
        launched, started = child.launched, False
        try:
            if launched is not None:
                await asyncio.wait([launched])
                started = launched.exception() is None
            if started and not kill:
                try:
                    child.to_child.send_bytes(_encode(_Stop()))
                except OSError:
                    kill = True
            if started and (kill or not await _wait_exit(child.process, 10.0)):
                child.process.kill()
                await _wait_exit(child.process, 10.0)
        finally:
            asyncio.get_running_loop().remove_reader(child.from_child.fileno())
            child.to_child.close()
            child.from_child.close()
            code = child.process.exitcode if started else None
            if code is not None:
                child.process.close()
            self._live.discard(child)
            if not self._live:
                self._all_gone.set()
        return code

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
