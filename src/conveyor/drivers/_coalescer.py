"""Coalesces concurrent enqueues from one process into fewer, larger writes.

A caller that finds no write in flight sends its jobs at once: a lone ``dispatch()``
waits for nothing. Callers that arrive while a write is in flight queue up, and the
moment it returns, all of them go together in the next write (up to ``max_jobs``). So
the batch size follows the load, with no timer: a hundred coroutines dispatching one job
each take a handful of round trips instead of a hundred.

All or none holds per caller: a failed write fails every caller it carried, and a caller
cancelled before its write was sent is taken out of the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class _Entry(Generic[T]):
    __slots__ = ("fut", "items")

    def __init__(self, items: Sequence[T], fut: asyncio.Future[None]) -> None:
        self.items = items
        self.fut = fut


class Coalescer(Generic[T]):
    """Funnels ``submit`` calls into ``send``, one call in flight at a time."""

    def __init__(self, send: Callable[[Sequence[T]], Awaitable[None]], max_jobs: int) -> None:
        self._send = send
        self._max_jobs = max_jobs
        self._queue: deque[_Entry[T]] = deque()
        self._busy = False
        self._flusher: asyncio.Task[None] | None = None
        #: writes sent, for tests and metrics
        self.writes = 0

    async def submit(self, items: Sequence[T]) -> None:
        if not self._busy:
            self._busy = True
            try:
                self.writes += 1
                await self._send(items)
            finally:
                self._hand_over()
            return
        entry = _Entry(items, asyncio.get_running_loop().create_future())
        self._queue.append(entry)
        try:
            await entry.fut
        except asyncio.CancelledError:
            if entry in self._queue:  # not sent: it never happened
                self._queue.remove(entry)
            raise

    def _hand_over(self) -> None:
        if self._queue:
            self._flusher = asyncio.create_task(self._flush(), name="conveyor-enqueue")
        else:
            self._busy = False

    async def _flush(self) -> None:
        queue = self._queue
        try:
            while queue:
                batch = [queue.popleft()]
                size = len(batch[0].items)
                while queue and size + len(queue[0].items) <= self._max_jobs:
                    entry = queue.popleft()
                    batch.append(entry)
                    size += len(entry.items)
                items = [item for entry in batch for item in entry.items]
                try:
                    self.writes += 1
                    await self._send(items)
                except asyncio.CancelledError:
                    for entry in batch:
                        entry.fut.cancel()
                    raise
                except Exception as exc:
                    for entry in batch:
                        if not entry.fut.done():
                            entry.fut.set_exception(exc)
                else:
                    for entry in batch:
                        if not entry.fut.done():
                            entry.fut.set_result(None)
        finally:
            self._busy = False
            self._flusher = None
            for entry in queue:  # cancelled mid-way (close): nobody will send these
                if not entry.fut.done():
                    entry.fut.cancel()
            queue.clear()

    async def close(self) -> None:
        flusher = self._flusher
        if flusher is not None:
            flusher.cancel()
            try:
                await flusher
            except asyncio.CancelledError:
                pass
