"""When could a reserve find work? Lets idle workers wait instead of asking the database.

A :class:`WorkTracker` remembers, per set of queues, when the database last said
"nothing more is due here" and when it said the next job would be (a delay, a retry
or a lease running out). Until then, nothing new can be due unless someone adds work,
and that is signalled: at once by this driver's own writes, and by other processes'
through the driver's channel (PostgreSQL ``LISTEN/NOTIFY``). So:

* with a trusted channel, ``reserve`` answers "nothing" without a query while the last
  answer still holds, and an idle worker asks the database about once per
  ``trusted_poll`` seconds (a safety net for writes the channel missed);
* without one (MySQL, or while the listener reconnects) every reserve queries, and
  ``wait_for_work`` checks at an adaptive interval: ``min_poll`` after activity,
  doubling up to ``max_poll`` while the queues stay empty.

Times here are this process's monotonic clock; the database reports due times as
seconds from its own ``now()``, so no clock needs to agree with another.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence

Key = tuple[str, ...]

_MARGIN = 0.002  # a due time reported by the database is waited for this much longer
_HELD_RETRY = 0.05  # something due but held by another transaction: look again this soon


class WorkTracker:
    """Per queue set: is the last "nothing due" answer still good, and until when?"""

    def __init__(
        self,
        *,
        trusted_poll: float = 1.0,
        min_poll: float = 0.05,
        max_poll: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.trusted = False
        self.trusted_poll = trusted_poll
        self.min_poll = min_poll
        self.max_poll = max_poll
        self._clock = clock
        self._clean: dict[Key, float] = {}  # start of the last query that found all there was
        self._next_due: dict[Key, float] = {}  # when that query said the next job is due
        self._empty_polls: dict[Key, int] = {}  # consecutive answers of "nothing at all"
        self._signalled: dict[str, float] = {}  # queue -> when work was last added
        self._announced: dict[str, float] = {}  # queue -> earliest announced future due time
        self._everything = -math.inf  # when all answers were last invalidated
        self._waiters: list[tuple[Key, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._clock()

    def _staleness(self, key: Key) -> float:
        if self.trusted:
            return self.trusted_poll
        backoff: float = self.min_poll * 2.0 ** self._empty_polls.get(key, 0)
        return min(backoff, self.max_poll)

    def dirty(self, key: Key) -> bool:
        """Could a reserve on ``key`` find something the last answer did not promise?"""
        clean = self._clean.get(key)
        if clean is None or self._everything >= clean:
            return True
        now = self._clock()
        if now >= self.deadline(key):
            return True
        return any(self._signalled.get(q, -math.inf) >= clean for q in key)

    def deadline(self, key: Key) -> float:
        """When the last answer on ``key`` runs out (staleness, a due job, an announcement)."""
        clean = self._clean.get(key)
        if clean is None:
            return -math.inf
        until = min(clean + self._staleness(key), self._next_due.get(key, math.inf))
        for q in key:
            until = min(until, self._announced.get(q, math.inf))
        return until

    def answered(
        self, key: Key, started: float, *, complete: bool, found: int, due_in: float | None
    ) -> None:
        """Record a query on ``key`` sent at ``started``.

        ``complete``: it took everything that was due (it asked for more than it got);
        ``found``: how many jobs it took; ``due_in``: seconds until the next waiting job
        or lease expiry, as the database saw it (``None``: none).
        """
        for q in key:
            if self._announced.get(q, math.inf) <= started:
                del self._announced[q]
        if not complete:
            self._clean.pop(key, None)
            self._empty_polls[key] = 0
            return
        self._clean[key] = started
        if due_in is None:
            self._next_due.pop(key, None)
        else:
            self._next_due[key] = started + (due_in if due_in > 0 else _HELD_RETRY) + _MARGIN
        self._empty_polls[key] = 0 if found else self._empty_polls.get(key, 0) + 1

    def forget(self, key: Key) -> None:
        """Drop what is known of ``key`` (a query on it failed half way)."""
        self._clean.pop(key, None)

    # -- signals --------------------------------------------------------------------

    def signal(self, queue: str, due_in: float = 0.0) -> None:
        """Work was added to ``queue``, due in ``due_in`` seconds."""
        now = self._clock()
        if due_in <= 0:
            self._signalled[queue] = now
            self._empty_polls = {k: 0 for k in self._empty_polls}
        else:
            due = now + due_in + _MARGIN
            if due < self._announced.get(queue, math.inf):
                self._announced[queue] = due
        self._wake(lambda key: queue in key)

    def signal_all(self) -> None:
        """Anything may have changed (the notification channel was down for a while)."""
        self._everything = self._clock()
        self._wake(lambda key: True)

    def _wake(self, matches: Callable[[Key], bool]) -> None:
        keep: list[tuple[Key, asyncio.Future[None]]] = []
        for key, fut in self._waiters:
            if fut.done():
                continue
            if matches(key):
                fut.set_result(None)
            else:
                keep.append((key, fut))
        self._waiters = keep

    async def wait(self, key: Key, until: float) -> None:
        """Sleep until ``until`` (this tracker's clock) or a signal that concerns ``key``."""
        timeout = until - self._clock()
        if timeout <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((key, fut))
        entry = (key, fut)
        self._waiters.append(entry)
        try:
            await asyncio.wait((fut,), timeout=timeout)
        finally:
            if not fut.done():
                fut.cancel()
                if entry in self._waiters:
                    self._waiters.remove(entry)


def key_of(queues: Sequence[str]) -> Key:
    return tuple(queues)
