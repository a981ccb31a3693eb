"""Coalesces job outcomes into batched ``complete`` calls."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from conveyor.drivers.base import Driver, Outcome

log = logging.getLogger("conveyor.worker")


class Acker:
    """Collects outcomes and sends them in batches, one batch in flight at a time.

    While a batch is on its way to the broker, new outcomes pile up and go in
    the next one, so batches grow with load and a lone job is acked at once.
    A failed send is retried with backoff: an outcome is never dropped.

    The worker's fetch loop may :meth:`take` the pending outcomes to send them with its
    next reserve in one call (a driver with that power); it hands the answer back with
    :meth:`settle`, or the outcomes with :meth:`restore` if the call failed. While
    ``hold()`` says such a reserve is coming (the worker is busy), the acker leaves its
    outcomes for it, for at most ``HOLD`` seconds; then it sends them itself.
    """

    #: longest an outcome waits for a reserve to ride along with
    HOLD = 0.005
    #: most outcomes that ride along: a bigger batch pays its own round trip anyway, and
    #: sent on its own it overlaps the reserve instead of slowing it down
    RIDE_MAX = 32

    def __init__(
        self,
        driver: Driver,
        batch_size: int,
        interval: float,
        on_acked: Callable[[Outcome, bool], None],
        hold: Callable[[], bool] | None = None,
    ) -> None:
        self._driver = driver
        self._batch_size = batch_size
        self._interval = interval
        self._on_acked = on_acked
        self._pending: list[Outcome] = []
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._taken = 0  # batches out with the fetch loop
        self._sending = False
        self._in_flight = 0  # outcomes in the batch being sent
        self._stopped = False  # close() cancelled the task
        self._hold = hold
        self._handoff = asyncio.Event()  # set when the fetch loop takes outcomes
        self._took = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="conveyor-acker")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopped:
            return  # close() ended it
        error = task.exception() if not task.cancelled() else None
        log.error(
            "worker.acker_stopped %d outcomes unsent (their jobs run again when their "
            "leases expire): %r",
            len(self._pending),
            error or "cancelled",
        )
        self._idle.set()  # nobody will send them now: don't let flush() wait forever

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._idle.clear()
        self._wakeup.set()

    def take(self) -> list[Outcome]:
        """Up to a batch of pending outcomes for the caller to send (then settle/restore)."""
        if not self._pending or len(self._pending) > self.RIDE_MAX or self._closing:
            return []
        batch = self._pending[: self._batch_size]
        del self._pending[: self._batch_size]
        self._taken += 1
        self._took = True
        self._handoff.set()
        return batch

    def settle(self, batch: list[Outcome], done: list[bool]) -> None:
        """A taken batch reached the broker; ``done`` as ``complete`` answered."""
        self._taken -= 1
        on_acked = self._on_acked
        for outcome, ok in zip(batch, done, strict=True):
            on_acked(outcome, ok)
        self._settled()

    def restore(self, batch: list[Outcome]) -> None:
        """A taken batch may not have reached the broker: it goes out again."""
        self._taken -= 1
        self._pending[:0] = batch
        self._wakeup.set()

    def _settled(self) -> None:
        if not self._pending and not self._taken and not self._sending:
            self._idle.set()

    async def flush(self) -> None:
        """Wait until every outcome added so far has reached the broker."""
        if self._pending or not self._idle.is_set():
            if self._task is not None and self._task.done():
                return  # the acker is gone (logged when it went)
            self._wakeup.set()
            await self._idle.wait()

    async def close(self, timeout: float | None = None) -> None:
        """Send what is pending, then stop. With ``timeout``, give up after that many
        seconds (the broker is away): what is unsent is logged, and those jobs run again
        when their leases expire."""
        self._closing = True
        try:
            async with asyncio.timeout(timeout):
                await self.flush()
        except TimeoutError:
            unsent = len(self._pending) + self._in_flight
            log.error(
                "worker.acks_unsent %d outcomes could not reach the broker in %.1fs; their "
                "jobs run again when their leases expire",
                unsent,
                timeout,
            )
        if self._task is not None:
            self._stopped = True
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:  # it died before close(): logged by _ended
                pass

    async def _handed_off(self) -> bool:
        """Wait up to ``HOLD`` for the fetch loop to take the outcomes; ``True`` if it did."""
        handoff = self._handoff
        handoff.clear()
        self._took = False
        timer = asyncio.get_running_loop().call_later(self.HOLD, handoff.set)
        await handoff.wait()
        timer.cancel()
        return self._took

    async def _run(self) -> None:
        delay = 0.05
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # gather every outcome produced in this loop turn
            if self._interval > 0 and len(self._pending) < self._batch_size and not self._closing:
                await asyncio.sleep(self._interval)
            hold = self._hold
            if hold is not None:
                while 0 < len(self._pending) <= self.RIDE_MAX and not self._closing and hold():
                    if not await self._handed_off():
                        break
            self._sending = True
            while self._pending:
                batch = self._pending[: self._batch_size]
                del self._pending[: self._batch_size]
                self._in_flight = len(batch)
                try:
                    done = await self._driver.complete(batch)
                except Exception as exc:
                    log.warning("worker.ack_failed retrying in %.2fs: %s", delay, exc)
                    self._pending[:0] = batch
                    self._in_flight = 0
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                except BaseException:
                    self._pending[:0] = batch  # counted as unsent if this ends the acker
                    raise
                finally:
                    self._in_flight = 0
                delay = 0.05
                for outcome, ok in zip(batch, done, strict=True):
                    self._on_acked(outcome, ok)
            self._sending = False
            self._settled()
