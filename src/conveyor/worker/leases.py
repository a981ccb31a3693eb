"""Keeps the leases of held jobs alive, and learns of cancels and lost leases."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from conveyor.drivers.base import Driver

log = logging.getLogger("conveyor.worker")


class LeaseKeeper:
    """Renews every held job's lease each ``lease/3`` seconds, in one batched call.

    A renewal that fails (broker down) is retried sooner; if the broker stays
    away longer than the lease, other workers may take the jobs over, and
    fencing makes this worker's late outcomes harmless. :meth:`poke` renews at once
    (a driver's cancel notice: the renewal is what reports the cancel).
    """

    def __init__(
        self,
        driver: Driver,
        lease: float,
        on_lost: Callable[[str], None],
        on_cancel: Callable[[str], None],
    ) -> None:
        self._driver = driver
        self._lease = lease
        self._on_lost = on_lost
        self._on_cancel = on_cancel
        self.held: dict[str, str] = {}  # job id -> token
        self._task: asyncio.Task[None] | None = None
        self._poked = asyncio.Event()

    @property
    def interval(self) -> float:
        return max(self._lease / 3, 0.05)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="conveyor-leases")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    def poke(self, job_id: str) -> None:
        """A cancel may have been asked for ``job_id``: renew now if it is held here."""
        if job_id in self.held:
            self._poked.set()

    async def renew_now(self) -> None:
        if not self.held:
            return
        held = list(self.held.items())
        result = await self._driver.renew(held, self._lease)
        for job_id in result.lost:
            if self.held.pop(job_id, None) is not None:
                log.warning("job.lease_lost id=%s: another worker may run it", job_id)
                self._on_lost(job_id)
        for job_id in result.cancel_requested:
            self._on_cancel(job_id)

    async def _run(self) -> None:
        poked = self._poked
        while True:
            try:
                await asyncio.wait_for(poked.wait(), self.interval)
            except TimeoutError:
                pass
            poked.clear()
            try:
                await self.renew_now()
            except Exception as exc:
                log.warning("worker.renew_failed: %s", exc)
