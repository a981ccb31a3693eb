"""The job: its states, its wire envelope (frozen, versioned) and what drivers report about it."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from enum import StrEnum

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
    max_attempts: int
    enqueued_at: float
    timeout: float | None = None
    result_ttl: float | None = None
    meta: dict[str, str] = {}


def new_job_id() -> str:
    """A 32-hex-digit id that sorts by creation time (UUIDv7 layout)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | rand
    # version 7 and RFC 4122 variant bits, so the id is a valid UUID too
    value = (value & ~(0xF << 76)) | (0x7 << 76)
    value = (value & ~(0x3 << 62)) | (0x2 << 62)
    return f"{value:032x}"


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
