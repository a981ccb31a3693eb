"""Where a task's code runs: the event loop, a thread pool, or a process pool."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from conveyor.core.context import JobContext
from conveyor.core.task import TaskDef

if TYPE_CHECKING:
    from conveyor.worker.config import WorkerConfig
    from conveyor.worker.process_pool import ProcessOutcome, ProcessPool


class TaskTimeoutError(TimeoutError):
    """The task ran longer than its timeout."""


class Executors:
    """Runs a task in the place its mode names, enforcing its timeout there.

    - async: awaited on the loop inside ``asyncio.timeout`` (cancelled at the deadline);
    - thread: in the thread pool; at the deadline the job fails, but the thread
      runs on (a thread can't be killed) with ``is_cancelled`` set;
    - process: in the process pool, whose child is killed and replaced at the deadline.
    """

    def __init__(self, config: WorkerConfig) -> None:
        self._config = config
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ProcessPool | None = None

    async def start(self) -> None:
        pass

    async def close(self, timeout: float) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            await self._processes.close(timeout)

    async def run_async(
        self,
        task: TaskDef[Any, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
    ) -> Any:
        if timeout is None:
            return await task.invoke(args, kwargs)
        try:
            async with asyncio.timeout(timeout):
                return await task.invoke(args, kwargs)
        except TimeoutError:
            raise TaskTimeoutError(f"task exceeded its timeout of {timeout:g}s") from None

    async def run_thread(
        self,
        task: TaskDef[Any, Any],
        args: list[Any],
        kwargs: dict[str, Any],
        timeout: float | None,
        ctx: JobContext,
    ) -> Any:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(
                self._config.thread_pool_size, thread_name_prefix="conveyor-task"
            )
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, task.invoke, args, kwargs)
        fut = loop.run_in_executor(self._threads, call)
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout)
        except TimeoutError:
            ctx._cancelled.set()
            raise TaskTimeoutError(
                f"task exceeded its timeout of {timeout:g}s (its thread was left to finish)"
            ) from None

    async def run_process(
        self, task: TaskDef[Any, Any], raw_args: bytes, timeout: float | None, ctx: JobContext
    ) -> ProcessOutcome:
        if self._processes is None:
            from conveyor.worker.process_pool import ProcessPool

            self._processes = ProcessPool(
                self._config.process_pool_size, list(self._config.modules), self._config.codec
            )
            await self._processes.start()
        from conveyor.worker.process_pool import JobInfoLite

        job = JobInfoLite(ctx.id, ctx.task, ctx.queue, ctx.attempt, ctx.max_attempts)
        return await self._processes.run(
            task.name, raw_args, job, timeout, ctx.report_progress, ctx._cancelled
        )
