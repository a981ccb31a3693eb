"""The job: its states, its wire envelope (frozen, versioned) and what drivers report about it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

import msgspec

WIRE_VERSION = 1


class JobStatus(StrEnum):
    """Where a job is in its life."""

    SCHEDULED = "scheduled"
    QUEUED = "queued"
    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    RETRYING = "retrying"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED


_FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.DEAD, JobStatus.CANCELLED})


class Envelope(msgspec.Struct, frozen=True, omit_defaults=True):
    """What travels through the broker, version 1 (see ``docs/wire-format.md``).

    ``args`` stays encoded until the worker has found the task, so that it can be
    decoded straight into the task's annotated types.
    """

    v: int
    id: str
    task: str
    queue: str
    args: msgspec.Raw
    max_attempts: Annotated[int, msgspec.Meta(ge=1)]
    enqueued_at: float
    timeout: float | None = None
    result_ttl: float | None = None
    meta: dict[str, str] = {}


_BATCH = 256  # ids per os.urandom() call
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122 variant
_tails: Iterator[str] = iter(())


def _forget_tails() -> None:
    global _tails
    _tails = iter(())


os.register_at_fork(after_in_child=_forget_tails)  # a forked child must not repeat our ids


def _refill() -> str:
    """256 random id tails: version nibble 7, then 74 random bits around the variant."""
    global _tails
    digits = os.urandom(10 * _BATCH).hex()
    _tails = iter(
        [
            f"7{digits[i + 1 : i + 4]}{_VARIANT[digits[i + 4]]}{digits[i + 5 : i + 20]}"
            for i in range(0, len(digits), 20)
        ]
    )
    return next(_tails)


def new_job_id(now_ms: int | None = None) -> str:
    """A 32-hex-digit id that sorts by creation time (UUIDv7 layout).

    48 bits of milliseconds (``now_ms``, else the clock), then 74 random bits from
    ``os.urandom``, drawn 256 ids at a time, so ids can't be guessed from one another.
    """
    tail = next(_tails, None)
    if tail is None:
        tail = _refill()
    if now_ms is None:
        now_ms = time.time_ns() // 1_000_000
    return f"{now_ms:012x}{tail}"


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """A failure as stored by the driver."""

    type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True, slots=True)
class JobInfo:
    """One job as a driver reports it (for handles, the CLI and dead-letter listings)."""

    id: str
    task: str
    queue: str
    status: JobStatus
    attempts: int
    priority: int
    run_at: float
    enqueued_at: float
    payload: bytes
    result: bytes | None = None
    error: ErrorInfo | None = None
    progress: float | None = None
    progress_message: str | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
