"""``current_job()``: what a running task can know and do about its own job."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

ProgressReporter = Callable[[float, str | None], Awaitable[None]]


class JobContext:
    """The running job, as seen from inside its task."""

    __slots__ = (
        "_event",
        "_loop",
        "_reporter",
        "_sync_reporter",
        "attempt",
        "id",
        "max_attempts",
        "queue",
        "task",
    )

    def __init__(
        self,
        id: str,
        task: str,
        queue: str,
        attempt: int,
        max_attempts: int,
        _reporter: ProgressReporter | None = None,
        _loop: asyncio.AbstractEventLoop | None = None,
        cancel_flag: threading.Event | None = None,
        sync_reporter: Callable[[float, str | None], None] | None = None,
    ) -> None:
        self.id = id
        self.task = task
        self.queue = queue
        self.attempt = attempt
        self.max_attempts = max_attempts
        self._reporter = _reporter
        self._loop = _loop
        # where a sync task runs on a thread that may block (a process-pool child)
        self._sync_reporter = sync_reporter
        # a flag owned elsewhere (a process-pool child shares one with its parent)
        self._event: threading.Event | None = cancel_flag

    def __repr__(self) -> str:
        return f"JobContext(id={self.id!r}, task={self.task!r}, attempt={self.attempt})"

    @property
    def _cancelled(self) -> threading.Event:
        # created on first use: most jobs are never asked about cancellation
        if self._event is None:
            self._event = threading.Event()
        return self._event

    @property
    def is_cancelled(self) -> bool:
        """True once someone asked to cancel this job (sync and process tasks poll this)."""
        return self._event is not None and self._event.is_set()

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    async def report_progress(self, fraction: float, message: str | None = None) -> None:
        """Record progress (0.0 to 1.0) that ``handle.progress()`` and the CLI show."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("progress is a fraction between 0.0 and 1.0")
        if self._reporter is not None:
            await self._reporter(fraction, message)

    def report_progress_sync(self, fraction: float, message: str | None = None) -> None:
        """``report_progress`` for sync tasks (thread pool or process pool)."""
        if self._sync_reporter is not None:
            if not 0.0 <= fraction <= 1.0:
                raise ValueError("progress is a fraction between 0.0 and 1.0")
            self._sync_reporter(fraction, message)
            return
        if self._loop is None:
            raise RuntimeError("report_progress_sync needs the worker's event loop")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            # waiting here for a coroutine scheduled on this very loop would deadlock it
            raise RuntimeError(
                "report_progress_sync() called on the event loop: in an async task use "
                "`await current_job().report_progress(...)`"
            )
        fut = asyncio.run_coroutine_threadsafe(self.report_progress(fraction, message), self._loop)
        fut.result()


_current: ContextVar[JobContext | None] = ContextVar("conveyor_current_job", default=None)


def current_job() -> JobContext:
    """The job whose task is running now. Raises ``RuntimeError`` outside a task."""
    ctx = _current.get()
    if ctx is None:
        raise RuntimeError("current_job() is only available while a task runs in a worker")
    return ctx


def set_current_job(ctx: JobContext | None) -> None:
    _current.set(ctx)
