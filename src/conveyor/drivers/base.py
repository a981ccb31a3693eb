"""The driver contract: the one interface between Conveyor and a broker.

A driver stores opaque payloads and their bookkeeping (queue, priority, due time,
attempts, lease) and nothing else; it never decodes a payload. Everything is
batch-first: one call enqueues, reserves, renews or completes many jobs, so a
driver can do each in one round trip.

The life of a job as a driver sees it::

    enqueue ──> queued / scheduled ──reserve──> active ──complete(SUCCEEDED)──> succeeded
                   ^    ^                       │  │ └──complete(DEAD)──────> dead
                   │    └─ complete(RETRY/SNOOZE/RELEASE)                     (dead letters)
                   └──── lease expired (attempt counted, ``deaths`` + 1)

Leases and fencing: ``reserve`` leases each job to the caller for ``lease``
seconds and hands out a fresh ``token``. ``renew`` and ``complete`` must quote
the token; once a lease has expired and another worker reserved the job, the
old token is dead and its ``complete`` returns ``False`` and changes nothing.

Attempts: ``reserve`` counts an attempt; ``SNOOZE`` and ``RELEASE`` give it back.

Clock: due times and lease expiry are judged by the broker's clock
(:meth:`Driver.now`), never by the caller's.

Optional powers are separate small protocols (:class:`SupportsTransactionalEnqueue`,
:class:`SupportsUnique`, :class:`SupportsLocks`, :class:`SupportsCounters`,
:class:`SupportsMigrations`, :class:`SupportsCompleteAndReserve`,
:class:`SupportsCancelNotices`); callers test for them with ``isinstance``.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import msgspec

from conveyor.core.job import ErrorInfo, JobInfo, JobStatus

DEFAULT_MAX_PAYLOAD = 1024 * 1024


class NewJob(msgspec.Struct, frozen=True):
    """A job to enqueue. ``eta`` (epoch seconds) wins over ``delay`` (seconds from now).

    A msgspec struct, not a dataclass: one is built per dispatched job, and a frozen
    dataclass costs ~1 µs to build against ~0.1 µs.
    """

    id: str
    task: str
    queue: str
    payload: bytes
    priority: int = 5
    delay: float = 0.0
    eta: float | None = None


@dataclass(slots=True)
class Reserved:
    """A job leased to a worker. ``attempts`` counts this delivery."""

    id: str
    queue: str
    payload: bytes
    attempts: int
    token: str
    priority: int = 5
    deaths: int = 0


class OutcomeKind(IntEnum):
    """How a reserved job ended this delivery."""

    SUCCEEDED = 1
    RETRY = 2  # back after ``delay``; the attempt stays counted
    SNOOZE = 3  # back after ``delay``; the attempt is given back
    DEAD = 4  # to the dead letters with ``error``
    CANCELLED = 5
    RELEASE = 6  # never started (shutdown): back now, the attempt is given back


@dataclass(slots=True)  # not frozen: built once per job on the hot path (3x cheaper)
class Outcome:
    """The end of one delivery, quoted with the lease token."""

    id: str
    token: str
    kind: OutcomeKind
    result: bytes | None = None
    result_ttl: float = 0.0
    delay: float = 0.0
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class RenewResult:
    """What ``renew`` learned: leases that are gone, and jobs whose cancel was asked for."""

    lost: frozenset[str] = frozenset()
    cancel_requested: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts of jobs per state in one queue."""

    queue: str
    counts: dict[JobStatus, int] = field(default_factory=dict)

    def __getitem__(self, status: JobStatus) -> int:
        return self.counts.get(status, 0)


class Driver(ABC):
    """A broker behind Conveyor. Subclasses implement the storage steps only."""

    #: URL schemes this driver serves, e.g. ``("sqlite",)``.
    schemes: ClassVar[tuple[str, ...]] = ()
    #: Largest encoded job accepted, in bytes.
    max_payload: int = DEFAULT_MAX_PAYLOAD

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Self:
        """Build a driver from its URL; ``options`` carry settings such as a clock."""
        return cls()

    async def connect(self) -> None:
        """Open connections. Called once before first use; must be idempotent."""

    async def close(self) -> None:
        """Release connections. The driver may be connected again afterwards."""

    async def ping(self) -> None:
        """Raise :class:`~conveyor.exceptions.BrokerError` if the broker is not usable."""
        await self.now()

    def missing(self) -> str | None:
        """Why the store this driver points at does not exist yet (``None``: it does, or
        the driver can't tell without connecting). ``conveyor check`` asks this before
        connecting, since connecting may create it (a SQLite file)."""
        return None

    @abstractmethod
    async def now(self) -> float:
        """The broker's clock, in epoch seconds."""

    # -- the hot path -----------------------------------------------------------

    @abstractmethod
    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        """Store ``jobs`` durably, all or none."""

    @abstractmethod
    async def reserve(
        self, queues: Sequence[str], limit: int, lease: float, worker_id: str
    ) -> list[Reserved]:
        """Lease up to ``limit`` due jobs, taking ``queues`` in the order given.

        Within a queue: priority (0 first), then due time, then enqueue order.
        Jobs whose lease has expired are due again (with ``deaths`` + 1).
        """

    @abstractmethod
    async def renew(self, held: Sequence[tuple[str, str]], lease: float) -> RenewResult:
        """Extend the leases on ``(job_id, token)`` pairs by ``lease`` seconds from now."""

    @abstractmethod
    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply outcomes; ``False`` where the token no longer holds the lease (fenced off)."""

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Return when work may be ready, or after ``timeout``. Default: just wait.

        Drivers with a wake-up channel (an in-process event, LISTEN/NOTIFY, a
        blocking pop) override this so idle workers start new jobs at once.
        """
        await asyncio.sleep(timeout)

    # -- inspection and management ------------------------------------------------

    @abstractmethod
    async def get_job(self, job_id: str) -> JobInfo | None:
        """One job, or ``None`` if unknown (never existed, or pruned)."""

    async def wait_finished(self, job_id: str, timeout: float | None) -> JobInfo | None:
        """Wait until the job is finished; return it (``None`` if it vanished).

        The default polls :meth:`get_job` with a growing interval; drivers with
        notifications override it. Raises ``TimeoutError`` after ``timeout``.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = 0.002
        while True:
            info = await self.get_job(job_id)
            if info is None or info.status.finished:
                return info
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id} not finished after {timeout}s")
                await asyncio.sleep(min(interval, remaining))
            else:
                await asyncio.sleep(interval)
            interval = min(interval * 2, 0.1)

    @abstractmethod
    async def cancel(self, job_id: str) -> bool:
        """Cancel: a waiting job becomes ``cancelled``; an active one gets a cancel request.

        Returns ``False`` if the job is unknown or already finished.
        """

    @abstractmethod
    async def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        """Record a running job's progress."""

    @abstractmethod
    async def list_jobs(
        self,
        status: JobStatus,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        """Jobs in ``status`` (oldest first), e.g. the dead letters."""

    @abstractmethod
    async def retry_dead(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        """Queue dead jobs again with a fresh attempt count (all of them when ids is None)."""

    @abstractmethod
    async def purge(self, status: JobStatus, queue: str | None = None) -> int:
        """Delete every job in ``status`` (``DEAD`` for the dead letters)."""

    @abstractmethod
    async def stats(self) -> list[QueueStats]:
        """Counts per queue and state."""


# -- optional powers -------------------------------------------------------------


@runtime_checkable
class SupportsTransactionalEnqueue(Protocol):
    """Enqueue inside the caller's open transaction (SQL drivers)."""

    async def enqueue_in(self, connection: Any, jobs: Sequence[NewJob]) -> None: ...


@runtime_checkable
class SupportsCompleteAndReserve(Protocol):
    """``complete`` then ``reserve`` in one round trip: a busy worker's steady state.

    The outcomes are applied first, then up to ``limit`` jobs are leased, as the two
    calls would do one after the other. If it raises, the caller can't tell whether the
    outcomes were applied and sends them again, as after a failed ``complete``.
    """

    async def complete_and_reserve(
        self,
        outcomes: Sequence[Outcome],
        queues: Sequence[str],
        limit: int,
        lease: float,
        worker_id: str,
    ) -> tuple[list[bool], list[Reserved]]: ...


@runtime_checkable
class SupportsCancelNotices(Protocol):
    """Tells a worker at once that a cancel was asked for a job (else it learns at renewal).

    A notice only says "look again": the worker then renews its leases, and the renewal
    is what reports the cancel. So a notice that is lost or forged changes nothing.
    """

    def watch_cancels(self, callback: Callable[[str], None]) -> None: ...

    def unwatch_cancels(self, callback: Callable[[str], None]) -> None: ...


@runtime_checkable
class SupportsMigrations(Protocol):
    """A schema that ``conveyor migrate`` creates and upgrades."""

    async def migrate(self) -> int: ...

    async def schema_version(self) -> int | None: ...


@runtime_checkable
class SupportsUnique(Protocol):
    """Enqueue unless a job with the same key is waiting or running; return the live id."""

    async def enqueue_unique(self, job: NewJob, key: str, ttl: float | None) -> str: ...


@runtime_checkable
class SupportsLocks(Protocol):
    """Cluster-wide locks with an expiry (cron leaders, chords)."""

    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool: ...

    async def release_lock(self, name: str, owner: str) -> bool: ...


@runtime_checkable
class SupportsCounters(Protocol):
    """Cluster-wide counters with an expiry (rate and concurrency limits)."""

    async def incr(self, name: str, amount: int, ttl: float) -> int: ...
