"""Control-flow signals a task raises to steer its own job."""

from __future__ import annotations

from datetime import timedelta


def _seconds(value: float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Retry(Exception):
    """Retry the job after ``delay`` seconds (uses an attempt).

    Without a delay the task's backoff decides.
    """

    def __init__(self, delay: float | timedelta | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        self.delay = None if delay is None else _seconds(delay)


class Snooze(Exception):
    """Put the job back for ``delay`` seconds without using an attempt."""

    def __init__(self, delay: float | timedelta = 0) -> None:
        super().__init__(f"snoozed for {_seconds(delay)}s")
        self.delay = _seconds(delay)


class Fail(Exception):
    """Fail the job now, without retrying: it goes to the dead letters with ``message``."""

    def __init__(self, message: str = "failed by the task") -> None:
        super().__init__(message)
