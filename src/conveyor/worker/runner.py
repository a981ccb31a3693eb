"""Turns one reserved job into one outcome: decode, check, run, classify.

Nothing here knows the broker. Every way a job can end maps to exactly one
:class:`~conveyor.drivers.base.Outcome`; a message that can't be trusted (bad
bytes, unknown task, arguments of the wrong type, too many worker deaths) goes
to the dead letters with the reason and never runs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from typing import Any

import msgspec

from conveyor.codec import Codec
from conveyor.core.backoff import full_jitter
from conveyor.core.context import JobContext, set_current_job
from conveyor.core.job import Envelope, ErrorInfo
from conveyor.core.registry import Registry
from conveyor.core.signals import Fail, Retry, Snooze
from conveyor.core.task import Mode, TaskDef
from conveyor.drivers.base import Driver, Outcome, OutcomeKind, Reserved
from conveyor.exceptions import DecodeError, TaskFailed
from conveyor.worker.config import WorkerConfig
from conveyor.worker.executors import Executors, TaskTimeoutError

log = logging.getLogger("conveyor.worker")

CANCELLED = "cancelled"
LOST = "lease-lost"
SHUTDOWN = "shutdown"


def _error(exc: BaseException) -> ErrorInfo:
    kind = type(exc)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    tb = "".join(traceback.format_exception(exc))
    return ErrorInfo(name, str(exc), tb)


class Runner:
    """Runs jobs for a worker (or for ``app.drain()``)."""

    def __init__(
        self,
        driver: Driver,
        codec: Codec,
        registry: Registry,
        config: WorkerConfig,
        executors: Executors,
    ) -> None:
        self.driver = driver
        self.codec = codec
        self.registry = registry
        self.config = config
        self.executors = executors
        #: job id -> why its task was cancelled from outside (set before ``task.cancel()``)
        self.interrupts: dict[str, str] = {}
        #: job id -> context of jobs running now
        self.running: dict[str, JobContext] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._info = log.isEnabledFor(logging.INFO)

    def _dead(self, rj: Reserved, type_: str, message: str) -> Outcome:
        if self._info:
            log.info("job.dead id=%s reason=%s: %s", rj.id, type_, message)
        return Outcome(rj.id, rj.token, OutcomeKind.DEAD, error=ErrorInfo(type_, message))

    async def run(self, rj: Reserved) -> Outcome | None:
        """Run one job; ``None`` when there is nothing to report (lease lost)."""
        try:
            env = self.codec.decode_envelope(rj.payload)
        except DecodeError as exc:
            return self._dead(rj, "DecodeError", str(exc))
        task = self.registry.get(env.task)
        if task is None:
            return self._dead(
                rj, "UnknownTask", f"task {env.task!r} is not registered in this worker"
            )
        if rj.deaths >= self.config.poison_threshold:
            return self._dead(
                rj,
                "PoisonPill",
                f"the worker running this job died {rj.deaths} times; not trying again",
            )
        if rj.attempts > env.max_attempts:
            return self._dead(
                rj, "LeaseExpired", "the worker running the last attempt stopped responding"
            )
        try:
            args = self.codec.decode(env.args, task.args_type)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return self._dead(rj, "ArgumentError", f"arguments don't match {task.name}: {exc}")
        except Exception as exc:
            return self._dead(rj, "ArgumentError", f"{type(exc).__name__}: {exc}")
        return await self._execute(rj, env, task, args)

    async def _execute(
        self, rj: Reserved, env: Envelope, task: TaskDef[Any, Any], args: msgspec.Struct
    ) -> Outcome | None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        job_id = rj.id
        ctx = JobContext(job_id, task.name, rj.queue, rj.attempts, env.max_attempts)
        ctx._loop = self._loop
        driver = self.driver

        async def report(fraction: float, message: str | None) -> None:
            await driver.set_progress(job_id, fraction, message)

        ctx._reporter = report
        self.running[job_id] = ctx
        timeout = env.timeout
        started = time.perf_counter()
        if self._info:
            log.info("job.started %s id=%s attempt=%d", task.name, job_id, rj.attempts)
        set_current_job(ctx)
        try:
            mode = task.mode
            if mode is Mode.ASYNC:
                positional, keywords = task.call_args(args)
                result = await self.executors.run_async(task, positional, keywords, timeout)
            elif mode is Mode.THREAD:
                positional, keywords = task.call_args(args)
                result = await self.executors.run_thread(task, positional, keywords, timeout, ctx)
            else:
                return await self._process(rj, env, task, ctx)
        except asyncio.CancelledError:
            reason = self.interrupts.pop(job_id, None)
            if reason is None or reason == SHUTDOWN:
                raise
            task_ = asyncio.current_task()
            if task_ is not None:
                task_.uncancel()
            if reason == LOST:
                return None
            return self._cancelled(rj)
        except Snooze as sig:
            return Outcome(job_id, rj.token, OutcomeKind.SNOOZE, delay=sig.delay)
        except Exception as exc:
            return await self._failure(rj, env, task, exc, _error(exc))
        finally:
            set_current_job(None)
            self.running.pop(job_id, None)
        if ctx.is_cancelled:
            return self._cancelled(rj)
        try:
            payload = self.codec.encode(result)
        except TypeError as exc:
            return self._dead(rj, "ResultEncodeError", f"cannot encode the result: {exc}")
        ttl = env.result_ttl if env.result_ttl is not None else self.config.result_ttl
        if self._info:
            ms = (time.perf_counter() - started) * 1000
            log.info("job.succeeded %s id=%s %.1fms", task.name, job_id, ms)
        return Outcome(job_id, rj.token, OutcomeKind.SUCCEEDED, result=payload, result_ttl=ttl)

    def _cancelled(self, rj: Reserved) -> Outcome:
        if self._info:
            log.info("job.cancelled id=%s", rj.id)
        return Outcome(
            rj.id,
            rj.token,
            OutcomeKind.CANCELLED,
            error=ErrorInfo("Cancelled", "cancelled while running"),
        )

    async def _failure(
        self,
        rj: Reserved,
        env: Envelope,
        task: TaskDef[Any, Any],
        exc: BaseException | None,
        error: ErrorInfo,
        retryable: bool | None = None,
        delay: float | None = None,
    ) -> Outcome:
        final = rj.attempts >= env.max_attempts
        if isinstance(exc, Fail):
            final = True
        elif isinstance(exc, Retry):
            delay = exc.delay
        elif retryable is None and exc is not None:
            try:
                retryable = task.should_retry(exc)
            except Exception:
                log.exception("job.hook_failed %s: should_retry() raised; not retrying", task.name)
                retryable = False
        if retryable is False:
            final = True
        if final:
            if exc is None:  # from a process-pool child: its exception stayed over there
                exc = TaskFailed(rj.id, error.type, error.message, error.traceback)
            try:
                await task.on_failed(exc)
            except Exception:
                log.exception("job.hook_failed %s: failed() raised", task.name)
            if self._info:
                log.info("job.dead %s id=%s %s: %s", task.name, rj.id, error.type, error.message)
            return Outcome(rj.id, rj.token, OutcomeKind.DEAD, error=error)
        if delay is None:
            try:
                delay = task.backoff_delay(
                    rj.attempts, self.config.backoff_base, self.config.backoff_cap
                )
            except Exception:
                # user code: a broken hook must not take the worker's slot down with it
                log.exception("job.hook_failed %s: backoff() raised; default backoff", task.name)
                delay = None
        if delay is None:
            base = task.backoff_base
            delay = full_jitter(
                rj.attempts,
                self.config.backoff_base if base is None else base,
                self.config.backoff_cap,
            )
        if self._info:
            log.info(
                "job.retrying %s id=%s attempt=%d in %.2fs: %s: %s",
                task.name,
                rj.id,
                rj.attempts,
                delay,
                error.type,
                error.message,
            )
        return Outcome(rj.id, rj.token, OutcomeKind.RETRY, delay=delay, error=error)

    async def _process(
        self, rj: Reserved, env: Envelope, task: TaskDef[Any, Any], ctx: JobContext
    ) -> Outcome | None:
        out = await self.executors.run_process(task, bytes(env.args), env.timeout, ctx)
        kind = out.kind
        if kind == "ok":
            if ctx.is_cancelled:
                return self._cancelled(rj)
            ttl = env.result_ttl if env.result_ttl is not None else self.config.result_ttl
            if self._info:
                log.info("job.succeeded %s id=%s", task.name, rj.id)
            return Outcome(
                rj.id, rj.token, OutcomeKind.SUCCEEDED, result=out.result, result_ttl=ttl
            )
        if kind == "snooze":
            return Outcome(rj.id, rj.token, OutcomeKind.SNOOZE, delay=out.delay or 0.0)
        error = ErrorInfo(out.error_type, out.error_message, out.traceback)
        if kind == "fail":
            return await self._failure(rj, env, task, None, error, retryable=False)
        if kind == "retry":
            return await self._failure(rj, env, task, None, error, retryable=True, delay=out.delay)
        if kind == "timeout":
            timeout_exc = TaskTimeoutError(
                f"task exceeded its timeout of {env.timeout:g}s; its process was killed"
            )
            error = ErrorInfo("conveyor.worker.executors.TaskTimeoutError", str(timeout_exc))
            try:  # retry_on / should_retry judge a process timeout like any other
                retryable = task.should_retry(timeout_exc)
            except Exception:
                log.exception("job.hook_failed %s: should_retry() raised", task.name)
                retryable = False
            return await self._failure(rj, env, task, None, error, retryable=retryable)
        return await self._failure(rj, env, task, None, error, retryable=out.retryable)
