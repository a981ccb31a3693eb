"""Where a task's code runs: the event loop, a thread pool, or a process pool."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib.machinery
import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from conveyor.core.context import JobContext
from conveyor.core.registry import Registry
from conveyor.core.task import Mode, TaskDef

if TYPE_CHECKING:
    from conveyor.worker.config import WorkerConfig
    from conveyor.worker.process_pool import ProcessOutcome, ProcessPool


def _importable(module: str) -> bool:
    """Whether a fresh process could import ``module`` (sys.modules is not asked)."""
    parent = module.rpartition(".")[0]
    try:
        if parent and parent not in sys.modules:
            return importlib.util.find_spec(module) is not None
        path = getattr(sys.modules.get(parent), "__path__", None) if parent else None
        return importlib.machinery.PathFinder.find_spec(module, path) is not None
    except (ImportError, ValueError):
        return False


class TaskTimeoutError(TimeoutError):
    """The task ran longer than its timeout."""


class Executors:
    """Runs a task in the place its mode names, enforcing its timeout there.

    - async: awaited on the loop inside ``asyncio.timeout`` (cancelled at the deadline);
    - thread: in the thread pool; at the deadline the job fails, but the thread
      runs on (a thread can't be killed) with ``is_cancelled`` set;
    - process: in the process pool, whose child is killed and replaced at the deadline.
    """

    def __init__(self, config: WorkerConfig, registry: Registry) -> None:
        self._config = config
        self._registry = registry
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ProcessPool | None = None
        self._pool_lock: asyncio.Lock | None = None

    def _process_modules(self) -> list[str]:
        """Modules a child imports: the worker's own, plus those defining process tasks.

        Both come from this worker's configuration and imports, never from a message.
        """
        modules = list(self._config.modules)
        for name in self._registry.names():
            task = self._registry.get(name)
            if task is None or task.mode is not Mode.PROCESS:
                continue
            module = getattr(task.owner or task.fn, "__module__", "__main__")
            if module in ("__main__", "__mp_main__") or module in modules:
                continue
            if _importable(module):  # e.g. not a script's module whose folder left sys.path
                modules.append(module)
        return modules

    async def start(self) -> None:
        """Start the process pool up front when this worker will surely need it.

        That is when it was given task modules (``conveyor worker myapp.tasks``) and a
        process task is registered: a child that can't import them fails the start, not
        the first job, and the first jobs don't wait for children to boot. Otherwise
        pools start on their first job (an embedded or test worker stays cheap).
        """
        if self._config.modules and any(
            (task := self._registry.get(name)) is not None and task.mode is Mode.PROCESS
            for name in self._registry.names()
        ):
            await self._process_pool()

    async def _process_pool(self) -> ProcessPool:
        if self._processes is not None:
            return self._processes
        if self._pool_lock is None:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:  # jobs arriving while it starts share one pool
            if self._processes is None:
                from conveyor.worker.process_pool import ProcessPool

                pool = ProcessPool(
                    self._config.process_pool_size, self._process_modules(), self._config.codec
                )
                await pool.start()
                self._processes = pool
        return self._processes

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
        pool = await self._process_pool()
        from conveyor.worker.process_pool import JobInfoLite

        job = JobInfoLite(ctx.id, ctx.task, ctx.queue, ctx.attempt, ctx.max_attempts)
        return await pool.run(task.name, raw_args, job, timeout, ctx.report_progress, _Asked(ctx))


class _Asked:
    """``ctx.is_cancelled`` as a cancel flag, without making ``ctx`` build its event."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: JobContext) -> None:
        self._ctx = ctx

    def is_set(self) -> bool:
        return self._ctx.is_cancelled
