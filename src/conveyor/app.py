"""``Conveyor``: settings + driver + codec + registry, connected lazily."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, ParamSpec, TypeVar, Unpack, overload

import msgspec

from conveyor.codec import Codec, get_codec
from conveyor.core import dispatch as _dispatch
from conveyor.core.clock import Clock, ManualClock
from conveyor.core.dispatch import Dispatch
from conveyor.core.handle import TaskHandle
from conveyor.core.job import WIRE_VERSION, Envelope, JobInfo, JobStatus, new_job_id
from conveyor.core.registry import registry as _registry
from conveyor.core.task import TaskDef, TaskKwargs, _Decorator, make_task
from conveyor.drivers import check_url, create_driver
from conveyor.drivers.base import Driver, NewJob, QueueStats, SupportsTransactionalEnqueue
from conveyor.exceptions import ArgumentError, ConfigurationError, PayloadTooLargeError
from conveyor.settings import Settings
from conveyor.worker import Worker, WorkerConfig, WorkerStats

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


class Conveyor:
    """An app: where tasks are dispatched to and run from.

    Args:
        url: broker URL (``sqlite:///conveyor.db``, ``memory://``, ...); default from settings.
        default_queue: queue for tasks that name none.
        eager: run each dispatched job inline (``memory://`` only; for tests).
        clock: a clock for the memory driver (tests move time with ``ManualClock``).
        settings: a full :class:`~conveyor.settings.Settings`; keyword overrides win.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        default_queue: str | None = None,
        eager: bool = False,
        clock: Clock | None = None,
        settings: Settings | None = None,
        **overrides: Any,
    ) -> None:
        values = dict(overrides)
        if url is not None:
            values["url"] = url
        if default_queue is not None:
            values["default_queue"] = default_queue
        if settings is None:
            settings = Settings(**values)
        elif values:  # validated like any other settings (model_copy would skip that)
            settings = Settings.model_validate({**settings.model_dump(), **values})
        self.settings = settings
        self.url = settings.url
        self.eager = eager
        if eager and clock is None:
            # inline runs never wait on the wall clock: drain() jumps over delays and backoffs
            clock = ManualClock()
        self.clock = clock
        check_url(self.url)  # fail fast on a bad URL; nothing connects yet
        if eager and not self.url.startswith("memory://"):
            raise ConfigurationError("eager mode runs on memory:// only")
        self.codec: Codec = get_codec(settings.codec)
        self._driver: Driver | None = None
        self._connected = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connect_lock: asyncio.Lock | None = None
        self._portal: _Portal | None = None

    def __repr__(self) -> str:
        return f"<Conveyor {self.url}>"

    # -- driver lifecycle --------------------------------------------------------

    @property
    def driver(self) -> Driver:
        """The broker driver (built on first use; not connected until needed)."""
        if self._driver is None:
            options: dict[str, Any] = {}
            if self.clock is not None:
                options["clock"] = self.clock
            self._driver = create_driver(self.url, **options)
            self._driver.max_payload = min(
                self._driver.max_payload, self.settings.max_payload_bytes
            )
        return self._driver

    async def connect(self) -> Driver:
        """Connect the driver (done for you on first use)."""
        driver = self.driver
        if self._connected:
            return driver
        await driver.connect()
        self._connected = True
        self._loop = asyncio.get_running_loop()
        return driver

    async def close(self) -> None:
        if self._driver is not None and self._connected:
            self._connected = False
            await self._driver.close()
        if self._portal is not None:
            self._portal.stop()
            self._portal = None

    async def __aenter__(self) -> Conveyor:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- defining tasks ------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> TaskDef[P, R]: ...
    @overload
    def task(self, fn: Callable[P, R], /) -> TaskDef[P, R]: ...
    @overload
    def task(self, /, **options: Unpack[TaskKwargs]) -> _Decorator: ...
    def task(self, fn: Callable[..., Any] | None = None, /, **options: Unpack[TaskKwargs]) -> Any:
        """``@app.task``: like ``@conveyor.task``, with dispatches going to this app."""
        return make_task(fn, self, options)

    # -- dispatching ---------------------------------------------------------------

    def _new_jobs(self, items: Sequence[Dispatch[Any]]) -> list[NewJob]:
        """Encode and check each dispatch: a bad argument or an oversize job raises here."""
        now = time.time()
        now_ms = int(now * 1000)
        codec = self.codec
        encode, decode, encode_envelope = codec.encode, codec.decode, codec.encode_envelope
        settings = self.settings
        default_queue, default_attempts = settings.default_queue, settings.max_attempts
        default_priority = settings.default_priority
        limit = self.driver.max_payload
        jobs: list[NewJob] = []
        for d in items:
            definition = d.task
            try:
                args = encode(d.args)
            except TypeError as exc:
                raise ArgumentError(f"{definition.name}(): {exc}") from None
            try:
                decode(args, definition.args_type)
            except msgspec.ValidationError as exc:
                raise ArgumentError(f"{definition.name}(): {exc}") from None
            queue = d.queue or default_queue
            job_id = new_job_id(now_ms)
            payload = encode_envelope(
                Envelope(
                    v=WIRE_VERSION,
                    id=job_id,
                    task=definition.name,
                    queue=queue,
                    args=msgspec.Raw(args),
                    max_attempts=d.attempts_allowed or default_attempts,
                    enqueued_at=now,
                    timeout=d.timeout_seconds,
                    result_ttl=definition.options.result_ttl,
                )
            )
            if len(payload) > limit:
                raise PayloadTooLargeError(
                    f"{definition.name}(): encoded job is {len(payload)} bytes, over the "
                    f"{limit}-byte limit of {self.url.split(':', 1)[0]}:// (pass a "
                    "reference, not the data)"
                )
            priority = d.priority_value
            jobs.append(
                NewJob(
                    job_id,
                    definition.name,
                    queue,
                    payload,
                    default_priority if priority is None else priority,
                    d.delay_seconds,
                    d.eta,
                )
            )
        return jobs

    async def enqueue_dispatches(
        self, items: Sequence[Dispatch[Any]], connection: Any = None
    ) -> list[TaskHandle[Any]]:
        jobs = self._new_jobs(items)
        driver = await self.connect()
        if connection is not None:
            if not isinstance(driver, SupportsTransactionalEnqueue):
                raise ConfigurationError(
                    f"transactional enqueue needs a SQL driver; {self.url} has none"
                )
            await driver.enqueue_in(connection, jobs)
        else:
            await driver.enqueue(jobs)
        handles = [TaskHandle(job.id, self, d.task) for job, d in zip(jobs, items, strict=True)]
        if self.eager:
            await self.drain()
        return handles

    async def dispatch_many(
        self, items: Sequence[Dispatch[Any]], *, connection: Any = None
    ) -> list[TaskHandle[Any]]:
        """Enqueue many jobs through this app in one round trip."""
        return await self.enqueue_dispatches(items, connection)

    def run_sync(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine for sync code: on the app's loop if it runs, else on a private one."""
        loop = self._loop
        if loop is not None and loop.is_running() and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                raise RuntimeError("run_sync() would block the app's own event loop")
            return asyncio.run_coroutine_threadsafe(factory(), loop).result()
        if self._portal is None:
            self._portal = _Portal()
        return self._portal.run(factory())

    # -- handles (HandleBackend) ---------------------------------------------------

    def handle(self, job_id: str, task: TaskDef[Any, T] | None = None) -> TaskHandle[T]:
        """A handle for a job id (e.g. from another request); pass ``task`` for typed results."""
        return TaskHandle(job_id, self, task)

    async def job_info(self, job_id: str) -> JobInfo | None:
        driver = await self.connect()
        return await driver.get_job(job_id)

    async def wait_job(self, job_id: str, timeout: float | None) -> JobInfo | None:
        driver = await self.connect()
        return await driver.wait_finished(job_id, timeout)

    async def cancel_job(self, job_id: str) -> bool:
        driver = await self.connect()
        return await driver.cancel(job_id)

    def decode_result(self, data: bytes, task: TaskDef[Any, Any] | None) -> Any:
        kind = task.return_type if task is not None else Any
        return self.codec.decode(data, kind)

    # -- dead letters, stats -------------------------------------------------------

    async def dead_letters(
        self, queue: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[JobInfo]:
        """Jobs in the dead-letter store, oldest first."""
        driver = await self.connect()
        return await driver.list_jobs(JobStatus.DEAD, queue, limit, offset)

    async def retry_dead(self, job_id: str | None = None, *, queue: str | None = None) -> int:
        """Queue a dead job again (every dead job when ``job_id`` is None)."""
        driver = await self.connect()
        return await driver.retry_dead(None if job_id is None else [job_id], queue)

    async def purge_dead(self, queue: str | None = None) -> int:
        """Delete the dead letters (of one queue, or all)."""
        driver = await self.connect()
        return await driver.purge(JobStatus.DEAD, queue)

    async def stats(self) -> list[QueueStats]:
        """Jobs per queue and state."""
        driver = await self.connect()
        return await driver.stats()

    # -- running -------------------------------------------------------------------

    def worker_config(self, **overrides: Any) -> WorkerConfig:
        s = self.settings
        values: dict[str, Any] = {
            "queues": (s.default_queue,),
            "concurrency": s.concurrency,
            "prefetch": s.prefetch,
            "lease_seconds": s.lease_seconds,
            "shutdown_grace": s.shutdown_grace,
            "thread_pool_size": s.thread_pool_size,
            "process_pool_size": s.process_pool_size,
            "max_attempts": s.max_attempts,
            "backoff_base": s.backoff_base,
            "backoff_cap": s.backoff_cap,
            "result_ttl": s.result_ttl,
            "poison_threshold": s.poison_threshold,
            "idle_poll_max": s.idle_poll_max,
            "ack_batch_size": s.ack_batch_size,
            "ack_interval": s.ack_interval,
            "codec": s.codec,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(values["queues"], str):
            values["queues"] = tuple(q.strip() for q in values["queues"].split(",") if q.strip())
        else:
            values["queues"] = tuple(values["queues"])
        values["modules"] = tuple(values.get("modules", ()))
        return WorkerConfig(**values)

    def worker(self, **overrides: Any) -> Worker:
        """A worker for this app (``await app.worker(queues=("high", "default")).run()``)."""
        return Worker(self.driver, _registry, self.worker_config(**overrides), self.codec)

    async def drain(
        self, queues: Sequence[str] | None = None, *, max_rounds: int = 10_000
    ) -> WorkerStats:
        """Run queued jobs in-process until none are left, delays and retries included.

        With a :class:`~conveyor.core.clock.ManualClock` the clock jumps to the next due
        job instead of waiting for it. Meant for ``memory://`` in tests.
        """
        driver = await self.connect()
        if queues is None:
            queues = [q.queue for q in await driver.stats()] or [self.settings.default_queue]
        total = WorkerStats()
        next_due = getattr(driver, "next_due", None)
        for _ in range(max_rounds):
            worker = Worker(
                driver,
                _registry,
                self.worker_config(
                    queues=tuple(queues),
                    burst=True,
                    ack_interval=0,
                    lease_seconds=max(self.settings.lease_seconds, 60.0),
                ),
                self.codec,
            )
            stats = await worker.run()
            for name in WorkerStats.__slots__:
                setattr(total, name, getattr(total, name) + getattr(stats, name))
            due = next_due() if callable(next_due) else None
            if due is None:
                break
            clock = self.clock
            advance = getattr(clock, "set", None)
            if advance is not None:
                advance(due)
            else:
                await asyncio.sleep(max(due - await driver.now(), 0.0) + 0.001)
        return total


class _Portal:
    """A private event loop in a daemon thread, for sync callers with no loop of their own."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="conveyor-portal", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


_default: Conveyor | None = None


def init(url: str | None = None, **options: Any) -> Conveyor:
    """Create the default app (from env vars / ``.env`` when no URL is given)."""
    global _default
    _default = Conveyor(url, **options)
    _dispatch.set_default_app(_default)
    return _default


def get_app() -> Conveyor:
    """The default app, created from settings on first use."""
    app = _dispatch.default_app()
    assert isinstance(app, Conveyor)
    return app


_dispatch.set_default_factory(lambda: init())
