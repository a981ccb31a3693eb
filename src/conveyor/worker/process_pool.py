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
  ``ConfigurationError`` from ``start()``), then keeps one ``asyncio.Runner`` for life
  for async tasks; sync tasks are called directly (no loop, no thread hop), and
  ``current_job().report_progress_sync()`` writes its progress frame itself.
- ``run()`` hands the job to an idle child; failing that, to a child whose current job
  is of a task that usually takes under ``_SHORT`` and has run for less than that (one
  job queued behind it, ``_DEPTH``), so a child never waits for the parent between short
  jobs and a long job never holds up a queued one; else it waits until a child frees up.
  Jobs come back in the order they were sent. A killed, crashed or recycled child is
  replaced in the background; a job that was queued behind the one that killed it never
  started, and goes to another child ("requeue", internal to ``run()``).
- Parent to child: ``Connection.send_bytes`` (the idle child is blocked reading). Child
  to parent: length-prefixed frames on a non-blocking pipe read by ``loop.add_reader``.
  Progress frames are coalesced (the newest unseen one is delivered) so a chatty task
  can't grow memory; ``on_progress`` errors are logged, never fail the job.
- Cancellation: each child shares two lock-free integers with the parent (a killed child
  can't leave them locked); jobs are numbered. ``cancel`` holds the number of the job
  to cancel: the child's ``current_job().is_cancelled`` is true only for that job. While
  a job runs the parent polls ``cancelled.is_set()`` every 50 ms and forwards it. ``skip``
  holds the number of a queued job whose caller gave up: the child answers "skipped"
  instead of running it.
- ``timeout`` counts from when the child starts the job (when the parent sent it to an
  idle child, or read the result of the job ahead of it), not the wait for a child.
- Tasks in a script run as ``__main__``: forkserver and spawn import the script as
  ``__mp_main__`` in the child (so guard its entry point with ``if __name__ ==
  "__main__":``) and task names map ``__mp_main__`` back to ``__main__``.
- Limits: POSIX only (``add_reader`` on pipes). Children are daemonic, so task code
  can't start multiprocessing children of its own. ``report_progress_sync`` from an
  *async* task deadlocks (as on the worker's loop).
"""

from __future__ import annotations

import asyncio
import collections
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


_DEPTH = 2  # jobs a child holds: the one it runs and the next, so it never waits for us
_SHORT = 0.025  # seconds: only tasks that usually finish this fast get a job queued behind


class _Job:
    """One job handed to a child, until its outcome is known."""

    __slots__ = ("abandoned", "outcome", "progress", "seq", "started", "task", "waiter")

    def __init__(self, task: str, seq: int) -> None:
        self.task = task
        self.seq = seq
        self.started: float | None = None  # loop time it became the child's current job
        self.outcome: _Done | Literal["crashed", "timeout", "requeue"] | None = None
        self.progress: _Progress | None = None
        self.waiter: asyncio.Future[None] | None = None  # its caller, while it waits
        self.abandoned = False

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Child:
    """One child process, seen from the parent: its pipes and the jobs it holds, in order."""

    def __init__(
        self,
        process: BaseProcess,
        to_child: Connection,
        from_child: Connection,
        cancel: ctypes.c_long,
        skip: ctypes.c_long,
        on_lost: Callable[[_Child], None],
        on_free: Callable[[], None],
    ) -> None:
        self.process = process
        self.to_child = to_child
        self.from_child = from_child
        self.cancel = cancel
        self.skip = skip
        self.on_lost = on_lost
        self.on_free = on_free
        self.launched: asyncio.Future[None] | None = None
        self.buffer = bytearray()
        self.reply: _Ready | _Fatal | None = None  # its start-up answer
        self.started = asyncio.Event()  # a start-up answer or EOF came
        self.gone = asyncio.Event()  # released by ProcessPool._discard
        self.exitcode: int | None = None
        self.pid: int | None = None
        self.inflight: collections.deque[_Job] = collections.deque()
        self.eof = False
        self.lost = False  # dead, killed or being replaced: takes no more jobs
        self.retiring = False  # served its max jobs: takes no more, stops when drained
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
                self._on_frame(frame)
        except msgspec.DecodeError:
            chunk = b""  # not our protocol: treat the child as lost
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.from_child.fileno())
            self.eof = True
            self.started.set()
            self.fail("crashed")

    def _on_frame(self, frame: _Ready | _Fatal | _Progress | _Done) -> None:
        if isinstance(frame, _Done):
            if self.inflight:
                job = self.inflight.popleft()
                job.outcome = frame
                job.wake()
                if job.abandoned:  # no caller will say this child has room again
                    self.on_free()
                if self.inflight:  # the child went straight on to the next one
                    head = self.inflight[0]
                    head.started = asyncio.get_running_loop().time()
                    head.wake()
        elif isinstance(frame, _Progress):
            if self.inflight:  # coalesced: the newest unseen one is delivered
                head = self.inflight[0]
                head.progress = frame
                head.wake()
        else:
            self.reply = frame
            self.started.set()

    def fail(self, head: Literal["crashed", "timeout"]) -> None:
        """The child is gone: its current job ended as ``head``; the rest never started."""
        kind: Literal["crashed", "timeout", "requeue"] = head
        while self.inflight:
            job = self.inflight.popleft()
            job.outcome = kind
            job.wake()
            kind = "requeue"
        if not self.lost:
            self.lost = True
            self.on_lost(self)


class _Slot:
    __slots__ = ("broken", "child")

    def __init__(self) -> None:
        self.child: _Child | None = None
        self.broken = False  # its replacement failed to start: the next caller retries


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
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._typical: dict[str, float] = {}  # task name -> smoothed run time (seconds)
        self._seq = 0
        #: jobs handed to a child that was still busy with another (a measure, for tests)
        self.queued_handoffs = 0
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
        info = (job.id, job.task, job.queue, job.attempt, job.max_attempts)
        while True:  # a job queued behind one that killed its child goes to another child
            child = await self._acquire()
            self._seq += 1
            entry = _Job(task_name, self._seq)
            run = _Run(entry.seq, task_name, args, info)
            done = await self._exchange(child, entry, run, timeout, on_progress, cancelled)
            if done != "requeue":
                break
        if done == "timeout":
            message = f"task exceeded its timeout of {timeout:g}s; its process was killed"
            return ProcessOutcome("timeout", None, None, "TimeoutError", message, "", True)
        if done == "crashed":
            try:
                async with asyncio.timeout(5.0):
                    await child.gone.wait()
            except TimeoutError:
                pass
            reason = _exit_reason(child.exitcode)
            log.warning("process_pool.child_crashed pid=%s %s", child.pid, reason)
            message = f"the process running the task died ({reason})"
            return ProcessOutcome("crashed", None, None, "ProcessCrashedError", message, "", True)
        fields = (done.error_type, done.error_message, done.traceback, done.retryable)
        return ProcessOutcome(done.kind, done.result, done.delay, *fields)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop idle children now, busy ones after their jobs; SIGKILL any left at the deadline."""
        if self._closed:
            return
        self._closed = True  # from now on no job is handed out and nothing is replaced
        for slot in self._slots:
            if (child := slot.child) is not None and not child.inflight:
                self._retire(slot, kill=False)
        if not await self._wait_gone(timeout):
            for child in list(self._live):
                if child.process.pid is not None and child.process.exitcode is None:
                    child.process.kill()
            await self._wait_gone(15.0)
        while self._background:
            await asyncio.wait(set(self._background))
        self._kick(everyone=True)  # callers still waiting for a child raise "closed"

    async def _wait_gone(self, limit: float) -> bool:
        try:
            async with asyncio.timeout(limit):
                await self._all_gone.wait()
        except TimeoutError:
            return False
        return True

    # -- handing out jobs ------------------------------------------------------------------

    def _pick(self) -> _Child | None:
        """An idle child; else one whose queue is short and quick; else ``None``."""
        queued: _Child | None = None
        for slot in self._slots:
            child = slot.child
            if child is None or child.lost or child.retiring:
                continue
            if not child.inflight:
                return child
            if queued is None and len(child.inflight) < _DEPTH and self._quick(child):
                queued = child
        return queued

    def _quick(self, child: _Child) -> bool:
        """Whether a job queued behind ``child``'s would start soon (no long head-of-line wait)."""
        head = child.inflight[0]
        if head.started is None or head.abandoned:
            return False
        typical = self._typical.get(head.task)
        if typical is None or typical > _SHORT:
            return False
        return asyncio.get_running_loop().time() - head.started < _SHORT

    async def _acquire(self) -> _Child:
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise RuntimeError("the process pool is closed")
            child = self._pick()
            if child is not None:
                return child
            broken = next((s for s in self._slots if s.broken), None)
            if broken is not None:  # a replacement failed to start: try again, for this job
                broken.broken = False
                try:
                    broken.child = await self._start_child()
                except BaseException:
                    broken.broken = True
                    raise
                continue
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._kick()  # we were woken for a free child we won't use: pass it on
                else:
                    self._waiters.remove(waiter)
                raise

    def _kick(self, *, everyone: bool = False) -> None:
        """Capacity may have freed up: wake the longest waiter (or all of them)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    async def _exchange(
        self,
        child: _Child,
        job: _Job,
        run: _Run,
        timeout: float | None,
        on_progress: Callable[[float, str | None], Awaitable[None]],
        cancelled: CancelFlag,
    ) -> _Done | Literal["timeout", "crashed", "requeue"]:
        loop = asyncio.get_running_loop()
        child.jobs += 1
        if self._max_jobs is not None and child.jobs >= self._max_jobs:
            child.retiring = True
        if not child.inflight:
            job.started = loop.time()
        else:
            self.queued_handoffs += 1
        child.inflight.append(job)
        if len(child.inflight) < _DEPTH:
            self._kick()  # a waiter may queue its job behind this one
        forwarded = job.started is not None and cancelled.is_set()
        if forwarded:  # a cancel from before the job started is seen at once
            child.cancel.value = job.seq
        try:
            child.to_child.send_bytes(_encode(run))
        except OSError:
            pass  # it just died; its EOF says the rest
        try:
            while True:
                started = job.started
                deadline = None if timeout is None or started is None else started + timeout
                if job.progress is not None:
                    progress, job.progress = job.progress, None
                    try:  # bounded by the deadline: a slow progress store can't stretch a job
                        async with asyncio.timeout_at(deadline):
                            await on_progress(progress.fraction, progress.message)
                    except Exception:
                        log.exception("process_pool.progress_failed")
                    continue
                if job.outcome is not None:
                    break
                if started is not None and not forwarded and cancelled.is_set():
                    child.cancel.value = job.seq
                    forwarded = True
                wake_at = None if forwarded or started is None else loop.time() + _POLL
                if deadline is not None:
                    if deadline <= loop.time():
                        child.process.kill()
                        child.fail("timeout")
                        continue
                    wake_at = deadline if wake_at is None else min(wake_at, deadline)
                job.waiter = waiter = loop.create_future()
                timer = None if wake_at is None else loop.call_at(wake_at, job.wake)
                try:
                    await waiter
                finally:
                    job.waiter = None
                    if timer is not None:
                        timer.cancel()
        except BaseException:  # our caller gave up mid-job
            self._abandon(child, job)
            raise
        outcome = job.outcome
        if isinstance(outcome, _Done):
            if started is not None:
                took = loop.time() - started
                was = self._typical.get(job.task)
                self._typical[job.task] = took if was is None else was + (took - was) / 4
            if (child.retiring or self._closed) and not child.inflight and not child.lost:
                child.lost = True
                self._retire(self._slot_of(child), kill=False)
            self._kick()
        return outcome

    def _abandon(self, child: _Child, job: _Job) -> None:
        if job.outcome is not None:
            return
        job.abandoned = True
        if job.started is not None:  # it is running: the child can't be reused
            child.process.kill()
            child.fail("crashed")
        else:  # still queued in the child: it answers "skipped" instead of running it
            child.skip.value = job.seq

    def _slot_of(self, child: _Child) -> _Slot | None:
        return next((s for s in self._slots if s.child is child), None)

    # -- children --------------------------------------------------------------------------

    def _on_lost(self, child: _Child) -> None:
        slot = self._slot_of(child)
        if slot is not None:
            self._retire(slot, kill=True)
        else:  # still starting, or already being replaced
            self._spawn(self._discard(child, kill=True))

    async def _start_child(self) -> _Child:
        child_in, to_child = self._mp.Pipe(duplex=False)
        from_child, child_out = self._mp.Pipe(duplex=False)
        cancel = self._mp.RawValue(ctypes.c_long, 0)
        skip = self._mp.RawValue(ctypes.c_long, 0)
        config = (child_in, child_out, cancel, skip, self._modules, self._codec_name)
        process = self._mp.Process(target=_child_main, args=config, name="conveyor-process")
        process.daemon = True
        child = _Child(process, to_child, from_child, cancel, skip, self._on_lost, self._kick)
        child.lost = True  # until it is ready, nothing may hand it a job
        self._live.add(child)
        self._all_gone.clear()
        loop = asyncio.get_running_loop()
        child.launched = loop.run_in_executor(None, _launch, process, child_in, child_out)
        try:
            await asyncio.shield(child.launched)
            child.pid = process.pid
            os.set_blocking(from_child.fileno(), False)
            loop.add_reader(from_child.fileno(), child.on_readable)
            await child.started.wait()
        except BaseException:
            self._spawn(self._discard(child, kill=True))
            raise
        if isinstance(child.reply, _Ready) and not child.eof and not self._closed:
            child.reply = None
            child.lost = False
            return child
        if isinstance(child.reply, _Ready) and not child.eof:
            await self._discard(child, kill=False)
            raise RuntimeError("the process pool is closed")
        fatal = child.reply.traceback if isinstance(child.reply, _Fatal) else ""
        reason = _exit_reason(await self._discard(child, kill=True))
        raise ConfigurationError(
            f"a process-pool child could not import {self._modules} ({reason})\n{fatal}".rstrip()
        )

    def _retire(self, slot: _Slot | None, *, kill: bool) -> None:
        """Stop the slot's child and start a replacement in the background."""
        if slot is None:
            return
        child, slot.child = slot.child, None
        if child is not None:
            child.lost = True

        async def replace() -> None:
            try:
                if child is not None:
                    await self._discard(child, kill=kill)
                if not self._closed:
                    slot.child = await self._start_child()
            except Exception:
                if not self._closed:
                    slot.broken = True
                    log.exception("process_pool.replacement_failed (the next job retries)")
            finally:
                self._kick()

        self._spawn(replace())

    async def _discard(self, child: _Child, *, kill: bool) -> int | None:
        """Stop a child (a stop frame, or SIGKILL), wait for it to exit, release it.

        Returns its exit code (``None`` if it never started or would not die).
        """
        if child not in self._live:
            await child.gone.wait()
            return child.exitcode
        self._live.discard(child)
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
            child.exitcode = code = child.process.exitcode if started else None
            if code is not None:
                child.process.close()
            child.fail("crashed")  # anything still held (none, normally) ends with it
            child.gone.set()
            if not self._live:
                self._all_gone.set()
        return code

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
