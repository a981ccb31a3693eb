"""Housekeeping: workers delete expired results and old cancelled jobs in small batches.

Each batch is one short transaction that takes only rows nobody holds (``SKIP LOCKED``)
and touches only finished rows, which reserving never reads, so pruning never holds
up a reserve. A batch that comes back full is followed by the next one soon after; an
incomplete one means the backlog is gone, and the pruner sleeps for ``interval``.
Dead letters are never pruned: they stay until retried or purged.

Stopping is bounded: :meth:`Pruner.stop` cancels the task and waits at most
``STOP_TIMEOUT`` for it, so a batch stuck on the server (a lock wait, a stalled
connection) never holds up closing the driver. A pruner that has been stopped never
starts another batch, even if its cancellation reached it as some other error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("conveyor.drivers")

PRUNE_INTERVAL = 5.0
PRUNE_BATCH = 500
#: How long :meth:`Pruner.stop` waits for a batch in progress to give up.
STOP_TIMEOUT = 2.0
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

    @property
    def running(self) -> bool:
        """Whether a pruning task is alive (a stopped one may take a moment to end)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start pruning on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="conveyor-prune")

    async def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Cancel pruning; wait for it to end, but no longer than ``timeout`` seconds.

        The caller's own cancellation is never swallowed here. A task that outlives the
        wait has been told to stop and starts no other batch; closing the pool ends
        whatever statement it is still waiting on.
        """
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=timeout)
        if not done:
            log.warning("pruning did not stop within %.1fs; closing without it", timeout)

    async def _run(self) -> None:
        me = asyncio.current_task()
        while self._task is me:
            await asyncio.sleep(self.interval)
            try:
                while self._task is me:
                    n = await self._prune(self.batch)
                    self.deleted += n
                    if n < self.batch:
                        break
                    await asyncio.sleep(_BACKLOG_PAUSE)
            except Exception as exc:
                if self._task is not me:
                    return  # stopped: a cancellation that surfaced as another error
                log.debug("prune failed: %s", exc)  # the broker is away: try again later
