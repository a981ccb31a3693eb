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
    """

    def __init__(
        self,
        driver: Driver,
        batch_size: int,
        interval: float,
        on_acked: Callable[[Outcome, bool], None],
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

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="conveyor-acker")

    def add(self, outcome: Outcome) -> None:
        self._pending.append(outcome)
        self._idle.clear()
        self._wakeup.set()

    async def flush(self) -> None:
        """Wait until every outcome added so far has reached the broker."""
        if self._pending or not self._idle.is_set():
            self._wakeup.set()
            await self._idle.wait()

    async def close(self) -> None:
        self._closing = True
        await self.flush()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        delay = 0.05
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await asyncio.sleep(0)  # gather every outcome produced in this loop turn
            if self._interval > 0 and len(self._pending) < self._batch_size and not self._closing:
                await asyncio.sleep(self._interval)
            while self._pending:
                batch = self._pending[: self._batch_size]
                del self._pending[: self._batch_size]
                try:
                    done = await self._driver.complete(batch)
                except Exception as exc:
                    log.warning("worker.ack_failed retrying in %.2fs: %s", delay, exc)
                    self._pending[:0] = batch
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.05
                for outcome, ok in zip(batch, done, strict=True):
                    self._on_acked(outcome, ok)
            self._idle.set()
