"""Clocks: wall time for real runs, a hand-driven one for tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Seconds since the epoch, as a float."""

    def now(self) -> float: ...


class SystemClock:
    """The machine's wall clock."""

    __slots__ = ()

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to; for tests of delays, retries and leases."""

    __slots__ = ("_now",)

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds

    def set(self, timestamp: float) -> None:
        """Jump to ``timestamp`` (never backwards)."""
        self._now = max(self._now, timestamp)


SYSTEM_CLOCK = SystemClock()
