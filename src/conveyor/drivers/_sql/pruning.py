"""Housekeeping: workers delete expired results and old cancelled jobs in small batches.

Each batch is one short statement that takes only rows nobody holds (``SKIP LOCKED``)
and touches only finished rows, which reserving never reads, so pruning never holds
up a reserve. A batch that comes back full is followed by the next one soon after; an
incomplete one means the backlog is gone, and the pruner sleeps for ``interval``.
Dead letters are never pruned: they stay until retried or purged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("conveyor.drivers")

PRUNE_INTERVAL = 5.0
PRUNE_BATCH = 500
_BACKLOG_PAUSE = 0.05


class Pruner:
    """Runs ``prune(batch) -> rows deleted`` in the background, throttled."""

    def __init__(
        self,
        prune: Callable[[int], Awaitable[int]],
        *,
        interval: float = PRUNE_INTERVAL,
        batch: int = PRUNE_BATCH,
    ) -> None:
        self._prune = prune
        self.interval = interval
        self.batch = batch
        self._task: asyncio.Task[None] | None = None
        self.deleted = 0

    def start(self) -> None:
        """Start pruning on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="conveyor-prune")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                while True:
                    n = await self._prune(self.batch)
                    self.deleted += n
                    if n < self.batch:
                        break
                    await asyncio.sleep(_BACKLOG_PAUSE)
            except Exception as exc:  # the broker is away: try again next time
                log.debug("prune failed: %s", exc)
