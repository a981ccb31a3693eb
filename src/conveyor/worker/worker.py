"""The worker: reserves jobs in batches, runs them within a concurrency limit,
keeps their leases, acks outcomes in batches, and shuts down gracefully.

Roles, each in its own module: fetching and running live here; leases in
:mod:`~conveyor.worker.leases`, acks in :mod:`~conveyor.worker.acker`, task
execution in :mod:`~conveyor.worker.runner` and :mod:`~conveyor.worker.executors`.
The worker knows the :class:`~conveyor.drivers.base.Driver` interface only.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from conveyor.codec import Codec, get_codec
from conveyor.core.job import ErrorInfo
from conveyor.core.registry import Registry
from conveyor.core.task import Mode
from conveyor.drivers.base import (
    Driver,
    Outcome,
    OutcomeKind,
    Reserved,
    SupportsCancelNotices,
    SupportsCompleteAndReserve,
)
from conveyor.exceptions import SchemaError
from conveyor.worker.acker import Acker
from conveyor.worker.config import WorkerConfig
from conveyor.worker.executors import Executors
from conveyor.worker.leases import LeaseKeeper
from conveyor.worker.runner import CANCELLED, LOST, SHUTDOWN, Runner

log = logging.getLogger("conveyor.worker")

#: least time outcomes get to reach the broker on shutdown, whatever is left of the grace
ACK_GRACE = 5.0


@dataclass(slots=True)
class WorkerStats:
    reserved: int = 0
    succeeded: int = 0
    retried: int = 0
    dead: int = 0
    cancelled: int = 0
    released: int = 0
    fenced: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.dead + self.cancelled


class Worker:
    """One worker process's engine. ``await worker.run()`` until stopped (or drained in burst)."""

    def __init__(
        self,
        driver: Driver,
        registry: Registry,
        config: WorkerConfig,
        codec: Codec | None = None,
    ) -> None:
        self.driver = driver
        self.registry = registry
        self.config = config
        self.codec = codec or get_codec(config.codec)
        self.stats = WorkerStats()
        self.executors = Executors(config, registry)
        self.runner = Runner(driver, self.codec, registry, config, self.executors)
        self.leases = LeaseKeeper(driver, config.lease_seconds, self._lease_lost, self._cancel)
        #: acks ride along with reserves when the driver does both in one round trip
        self._both = driver if isinstance(driver, SupportsCompleteAndReserve) else None
        self._busy = False  # the last reserve found jobs: another one is coming soon
        self._waiting = False  # the fetch loop waits for room (no call of its own out)
        self.acker = Acker(
            driver,
            config.ack_batch_size,
            config.ack_interval,
            self._acked,
            hold=self._reserve_coming if self._both is not None else None,
        )
        self._buffer: deque[Reserved] = deque()
        self._slot_waiters: deque[asyncio.Future[Reserved | None]] = deque()
        self._slots: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._space = asyncio.Event()
        self._stopping = asyncio.Event()
        #: set once the worker is connected, its pools are up and it takes jobs
        self.ready = asyncio.Event()
        self._cancel_requested: set[str] = set()
        self._started_jobs = 0
        self._inflight = 0

    # -- control ---------------------------------------------------------------

    def stop(self) -> None:
        """Stop reserving; finish in-flight jobs within ``shutdown_grace``."""
        self._stopping.set()
        self._space.set()

    @property
    def held(self) -> int:
        """Jobs reserved and not yet finished running (acks may still be on their way)."""
        return self._inflight

    async def run(self) -> WorkerStats:
        """Run until :meth:`stop` (or, in burst mode, until nothing is due)."""
        cfg = self.config
        await self.driver.connect()
        await self.executors.start()
        self.acker.start()
        self.leases.start()
        notices = self.driver if isinstance(self.driver, SupportsCancelNotices) else None
        if notices is not None:
            notices.watch_cancels(self.leases.poke)
        self._slots = [
            asyncio.create_task(self._slot(), name=f"conveyor-slot-{i}")
            for i in range(cfg.concurrency)
        ]
        self.ready.set()
        try:
            await self._fetch()
        finally:
            if notices is not None:
                notices.unwatch_cancels(self.leases.poke)
            await self._shutdown()
        return self.stats

    # -- fetching ----------------------------------------------------------------

    async def _fetch(self) -> None:
        cfg = self.config
        capacity = cfg.capacity
        low_water = max(1, capacity // 4)  # reserve in batches of a quarter of capacity
        poll = 0.001
        stopping = self._stopping
        while not stopping.is_set():
            if cfg.max_jobs is not None and self._started_jobs >= cfg.max_jobs:
                break
            want = capacity - self.held
            if cfg.max_jobs is not None:
                want = min(want, cfg.max_jobs - self.stats.reserved)
            if want < low_water and self.held:
                self._space.clear()
                self._waiting = True  # outcomes may wait for the reserve that follows
                try:
                    await self._space.wait()
                finally:
                    self._waiting = False
                continue
            try:
                jobs = await self._reserve(want)
            except SchemaError:
                raise  # waiting can't fix it: say "run conveyor migrate" and stop
            except Exception as exc:
                backoff = min(max(poll, 0.1), 5.0)
                log.warning("worker.reserve_failed retrying in %.2fs: %s", backoff, exc)
                await self._pause(backoff)
                poll = min(backoff * 2, 5.0)
                continue
            self._busy = bool(jobs)
            if jobs:
                poll = 0.001
                self._hand_out(jobs)
                continue
            if cfg.burst:
                if self.held == 0:
                    try:
                        await self.acker.flush()
                        if self.held == 0 and not self.leases.held and not await self._due_now():
                            break
                    except Exception as exc:  # the broker is away: keep trying, don't quit
                        log.warning("worker.reserve_failed retrying in 0.50s: %s", exc)
                        await self._pause(0.5)
                        continue
                    continue
                self._space.clear()
                await self._space.wait()
                continue
            await self._wait_for_work(poll)
            poll = min(poll * 2, cfg.idle_poll_max)

    async def _reserve(self, want: int) -> list[Reserved]:
        """Reserve up to ``want`` jobs; with the driver's power, send pending acks along."""
        cfg = self.config
        both = self._both
        batch = self.acker.take() if both is not None else None
        if not batch:
            return await self.driver.reserve(cfg.queues, want, cfg.lease_seconds, cfg.worker_id)
        assert both is not None
        try:
            done, jobs = await both.complete_and_reserve(
                batch, cfg.queues, want, cfg.lease_seconds, cfg.worker_id
            )
        except BaseException:
            self.acker.restore(batch)  # the acker sends them again, with its retries
            raise
        self.acker.settle(batch, done)
        return jobs

    def _reserve_coming(self) -> bool:
        """Whether outcomes should wait for the fetch loop's next reserve to ride along:
        it found jobs last time and now waits for room. While its own call is out, the
        acker sends on its own, so acks and reserves overlap instead of queueing."""
        return self._busy and self._waiting and not self._stopping.is_set()

    async def _due_now(self) -> bool:
        jobs = await self.driver.reserve(
            self.config.queues,
            self.config.capacity,
            self.config.lease_seconds,
            self.config.worker_id,
        )
        if jobs:
            self._hand_out(jobs)
            return True
        return False

    async def _wait_for_work(self, timeout: float) -> None:
        waiter = asyncio.ensure_future(self.driver.wait_for_work(self.config.queues, timeout))
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait((waiter, stop), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for fut in (waiter, stop):
                if not fut.done():
                    fut.cancel()
            for fut in (waiter, stop):
                try:
                    await fut
                except (asyncio.CancelledError, Exception):
                    pass

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    def _hand_out(self, jobs: list[Reserved]) -> None:
        held = self.leases.held
        self.stats.reserved += len(jobs)
        self._inflight += len(jobs)
        waiters = self._slot_waiters
        for rj in jobs:
            held[rj.id] = rj.token
            while waiters:
                fut = waiters.popleft()
                if not fut.done():
                    fut.set_result(rj)
                    break
            else:
                self._buffer.append(rj)

    # -- running -----------------------------------------------------------------

    async def _next(self) -> Reserved | None:
        if self._stopping.is_set():
            return None  # what is still buffered is released by _shutdown
        if self._buffer:
            return self._buffer.popleft()
        fut: asyncio.Future[Reserved | None] = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(fut)
        return await fut

    async def _slot(self) -> None:
        runner = self.runner
        acker = self.acker
        me = asyncio.current_task()
        assert me is not None
        while True:
            rj = await self._next()
            if rj is None:
                return
            self._started_jobs += 1
            if rj.id in self._cancel_requested:
                self._cancel_requested.discard(rj.id)
                acker.add(runner._cancelled(rj))
                self._slot_done()
                continue
            self._running[rj.id] = me
            try:
                outcome = await runner.run(rj)
            except Exception as exc:  # a bug here must not lose the job or the slot
                log.exception("worker.internal_error id=%s", rj.id)
                outcome = Outcome(
                    rj.id,
                    rj.token,
                    OutcomeKind.DEAD,
                    error=ErrorInfo("WorkerError", f"{type(exc).__name__}: {exc}"),
                )
            finally:
                self._running.pop(rj.id, None)
                self._slot_done()
            if outcome is None:
                self._forget(rj.id)
            else:
                acker.add(outcome)

    def _slot_done(self) -> None:
        self._inflight -= 1
        self._space.set()

    def _forget(self, job_id: str) -> None:
        self.leases.held.pop(job_id, None)
        self._space.set()

    def _acked(self, outcome: Outcome, ok: bool) -> None:
        self._forget(outcome.id)
        stats = self.stats
        if not ok:
            stats.fenced += 1
            log.warning("job.fenced id=%s: lease lost, outcome discarded", outcome.id)
            return
        kind = outcome.kind
        if kind is OutcomeKind.SUCCEEDED:
            stats.succeeded += 1
        elif kind is OutcomeKind.RETRY:
            stats.retried += 1
        elif kind is OutcomeKind.DEAD:
            stats.dead += 1
        elif kind is OutcomeKind.CANCELLED:
            stats.cancelled += 1
        elif kind is OutcomeKind.RELEASE:
            stats.released += 1

    def _interrupt(self, job_id: str, reason: str) -> bool:
        ctx = self.runner.running.get(job_id)
        if ctx is not None:
            ctx._cancelled.set()
        slot = self._running.get(job_id)
        if slot is None or ctx is None:
            return False
        task = self.registry.get(ctx.task)
        if task is not None and task.mode is Mode.ASYNC:
            self.runner.interrupts[job_id] = reason
            slot.cancel()
        return True

    def _cancel(self, job_id: str) -> None:
        if not self._interrupt(job_id, CANCELLED):
            self._cancel_requested.add(job_id)

    def _lease_lost(self, job_id: str) -> None:
        for i, rj in enumerate(self._buffer):
            if rj.id == job_id:
                del self._buffer[i]
                self._slot_done()
                break
        self._interrupt(job_id, LOST)

    # -- shutdown ----------------------------------------------------------------

    async def _shutdown(self) -> None:
        cfg = self.config
        loop = asyncio.get_running_loop()
        deadline = loop.time() + cfg.shutdown_grace
        self._stopping.set()
        # unstarted jobs go back without using an attempt
        while self._buffer:
            rj = self._buffer.popleft()
            self._inflight -= 1
            self.acker.add(Outcome(rj.id, rj.token, OutcomeKind.RELEASE))
        for fut in self._slot_waiters:
            if not fut.done():
                fut.set_result(None)
        self._slot_waiters.clear()
        busy = [t for t in self._slots if not t.done()]
        if busy:
            _, pending = await asyncio.wait(busy, timeout=cfg.shutdown_grace)
            if pending:
                log.warning(
                    "worker.shutdown %d jobs still running after grace; releasing", len(pending)
                )
                for job_id, slot in list(self._running.items()):
                    token = self.leases.held.get(job_id)
                    self.runner.interrupts[job_id] = SHUTDOWN
                    slot.cancel()
                    if token is not None:
                        self.acker.add(Outcome(job_id, token, OutcomeKind.RELEASE))
                await asyncio.wait(pending, timeout=5)
        await self.leases.stop()
        # outcomes get what is left of the grace, and never less than ACK_GRACE: a broker
        # that is away can't hold the shutdown up for ever (their leases will expire)
        await self.acker.close(timeout=max(deadline - loop.time(), ACK_GRACE))
        await self.executors.close(timeout=5)
