"""``memory://``: an in-process broker, and the reference implementation of the contract.

It keeps everything in dicts and heaps, honours leases, fencing, priorities and
delays exactly like a real broker, and records every enqueued job so tests can
assert on what was dispatched. Its clock is injectable, so tests can move time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.core.clock import SYSTEM_CLOCK, Clock
from conveyor.core.job import ErrorInfo, JobInfo, JobStatus
from conveyor.drivers.base import (
    Driver,
    NewJob,
    Outcome,
    OutcomeKind,
    QueueStats,
    RenewResult,
    Reserved,
)

_WAITING = frozenset({JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.RETRYING})


@dataclass(slots=True)
class _Record:
    id: str
    task: str
    queue: str
    payload: bytes
    priority: int
    run_at: float
    enqueued_at: float
    seq: int
    status: JobStatus
    attempts: int = 0
    deaths: int = 0
    token: str = ""
    lease_until: float = 0.0
    version: int = 0
    result: bytes | None = None
    expires_at: float | None = None
    error: ErrorInfo | None = None
    progress: float | None = None
    progress_message: str | None = None
    finished_at: float | None = None
    cancel_requested: bool = False

    def info(self) -> JobInfo:
        return JobInfo(
            id=self.id,
            task=self.task,
            queue=self.queue,
            status=self.status,
            attempts=self.attempts,
            priority=self.priority,
            run_at=self.run_at,
            enqueued_at=self.enqueued_at,
            payload=self.payload,
            result=self.result,
            error=self.error,
            progress=self.progress,
            progress_message=self.progress_message,
            finished_at=self.finished_at,
            cancel_requested=self.cancel_requested,
        )


@dataclass(slots=True)
class _Queue:
    ready: list[tuple[int, float, int, str, int]] = field(default_factory=list)
    delayed: list[tuple[float, int, str, int]] = field(default_factory=list)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class MemoryDriver(Driver):
    """In-process broker. Not shared between processes; data is lost on exit."""

    schemes = ("memory",)

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self.jobs: dict[str, _Record] = {}
        self.history: list[NewJob] = []
        self._queues: dict[str, _Queue] = {}
        self._leases: list[tuple[float, str, str]] = []
        self._seq = itertools.count()
        self._tokens = itertools.count(1)
        self._work_waiters: list[asyncio.Future[None]] = []
        self._finish_waiters: dict[str, list[asyncio.Future[None]]] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryDriver:
        clock = options.get("clock")
        return cls(clock) if clock is not None else cls()

    async def now(self) -> float:
        return self.clock.now()

    # -- helpers ---------------------------------------------------------------

    def _queue(self, name: str) -> _Queue:
        q = self._queues.get(name)
        if q is None:
            q = self._queues[name] = _Queue()
        return q

    def _push(self, rec: _Record, now: float) -> None:
        rec.version += 1
        q = self._queue(rec.queue)
        if rec.run_at <= now:
            heapq.heappush(q.ready, (rec.priority, rec.run_at, rec.seq, rec.id, rec.version))
        else:
            heapq.heappush(q.delayed, (rec.run_at, rec.seq, rec.id, rec.version))

    def _notify_work(self) -> None:
        waiters, self._work_waiters = self._work_waiters, []
        for fut in waiters:
            fut.get_loop().call_soon_threadsafe(_wake, fut)

    def _finished(self, rec: _Record, now: float) -> None:
        rec.version += 1
        rec.finished_at = now
        rec.token = ""
        for fut in self._finish_waiters.pop(rec.id, ()):
            fut.get_loop().call_soon_threadsafe(_wake, fut)

    def _recover_expired(self, now: float) -> None:
        leases = self._leases
        while leases and leases[0][0] <= now:
            _, job_id, token = heapq.heappop(leases)
            rec = self.jobs.get(job_id)
            if (
                rec is None
                or rec.status is not JobStatus.ACTIVE
                or rec.token != token
                or rec.lease_until > now
            ):
                continue
            rec.status = JobStatus.QUEUED
            rec.deaths += 1
            rec.token = ""
            rec.run_at = now
            self._push(rec, now)

    def _status(self, rec: _Record, now: float) -> JobStatus:
        if rec.status is JobStatus.SCHEDULED and rec.run_at <= now:
            return JobStatus.QUEUED
        return rec.status

    def _expired(self, rec: _Record, now: float) -> bool:
        return rec.expires_at is not None and rec.expires_at <= now

    def _live(self, job_id: str, now: float) -> _Record | None:
        rec = self.jobs.get(job_id)
        if rec is not None and self._expired(rec, now):
            del self.jobs[job_id]
            return None
        return rec

    # -- hot path ----------------------------------------------------------------

    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        now = self.clock.now()
        for job in jobs:
            run_at = job.eta if job.eta is not None else now + max(job.delay, 0.0)
            rec = _Record(
                id=job.id,
                task=job.task,
                queue=job.queue,
                payload=job.payload,
                priority=job.priority,
                run_at=run_at,
                enqueued_at=now,
                seq=next(self._seq),
                status=JobStatus.SCHEDULED if run_at > now else JobStatus.QUEUED,
            )
            self.jobs[job.id] = rec
            self._push(rec, now)
        self.history.extend(jobs)
        self._notify_work()

    async def reserve(
        self, queues: Sequence[str], limit: int, lease: float, worker_id: str
    ) -> list[Reserved]:
        now = self.clock.now()
        self._recover_expired(now)
        out: list[Reserved] = []
        jobs = self.jobs
        for name in queues:
            q = self._queues.get(name)
            if q is None:
                continue
            delayed, ready = q.delayed, q.ready
            while delayed and delayed[0][0] <= now:
                _, _, job_id, version = heapq.heappop(delayed)
                rec = jobs.get(job_id)
                if rec is not None and rec.version == version and rec.status in _WAITING:
                    heapq.heappush(ready, (rec.priority, rec.run_at, rec.seq, rec.id, version))
            while ready and len(out) < limit:
                _, _, _, job_id, version = heapq.heappop(ready)
                rec = jobs.get(job_id)
                if rec is None or rec.version != version or rec.status not in _WAITING:
                    continue
                rec.status = JobStatus.ACTIVE
                rec.attempts += 1
                rec.token = f"{next(self._tokens):x}"  # unique per driver: all fencing needs
                rec.lease_until = now + lease
                rec.version += 1
                heapq.heappush(self._leases, (rec.lease_until, rec.id, rec.token))
                out.append(
                    Reserved(
                        id=rec.id,
                        queue=rec.queue,
                        payload=rec.payload,
                        attempts=rec.attempts,
                        token=rec.token,
                        priority=rec.priority,
                        deaths=rec.deaths,
                    )
                )
            if len(out) >= limit:
                break
        return out

    async def renew(self, held: Sequence[tuple[str, str]], lease: float) -> RenewResult:
        now = self.clock.now()
        self._recover_expired(now)
        lost: set[str] = set()
        cancel: set[str] = set()
        for job_id, token in held:
            rec = self.jobs.get(job_id)
            if rec is None or rec.status is not JobStatus.ACTIVE or rec.token != token:
                lost.add(job_id)
                continue
            rec.lease_until = now + lease
            heapq.heappush(self._leases, (rec.lease_until, rec.id, token))
            if rec.cancel_requested:
                cancel.add(job_id)
        return RenewResult(frozenset(lost), frozenset(cancel))

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        now = self.clock.now()
        done: list[bool] = []
        requeued = False
        for o in outcomes:
            rec = self.jobs.get(o.id)
            if rec is None or rec.status is not JobStatus.ACTIVE or rec.token != o.token:
                done.append(False)
                continue
            done.append(True)
            kind = o.kind
            if kind is OutcomeKind.SUCCEEDED:
                rec.status = JobStatus.SUCCEEDED
                rec.result = o.result if o.result_ttl > 0 else None
                rec.error = None  # an earlier attempt's failure is no longer the story
                self._finished(rec, now)
                if o.result_ttl > 0:
                    rec.expires_at = now + o.result_ttl
                else:
                    del self.jobs[rec.id]
            elif kind is OutcomeKind.DEAD or kind is OutcomeKind.CANCELLED:
                rec.status = JobStatus.DEAD if kind is OutcomeKind.DEAD else JobStatus.CANCELLED
                rec.error = o.error
                self._finished(rec, now)
            else:
                rec.token = ""
                rec.run_at = now + max(o.delay, 0.0)
                if kind is OutcomeKind.RETRY:
                    rec.status = JobStatus.RETRYING
                    rec.error = o.error
                else:  # SNOOZE, RELEASE: the attempt is given back
                    rec.attempts -= 1
                    rec.status = JobStatus.SCHEDULED if o.delay > 0 else JobStatus.QUEUED
                self._push(rec, now)
                requeued = True
        if requeued:
            self._notify_work()
        return done

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        now = self.clock.now()
        for name in queues:
            q = self._queues.get(name)
            if q is None:
                continue
            if q.ready:
                return
            if q.delayed:
                timeout = min(timeout, max(q.delayed[0][0] - now, 0.0))
        if self._leases:
            timeout = min(timeout, max(self._leases[0][0] - now, 0.0))
        if timeout <= 0:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._work_waiters.append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            pass
        finally:
            if fut in self._work_waiters:
                self._work_waiters.remove(fut)

    # -- inspection and management -------------------------------------------------

    async def get_job(self, job_id: str) -> JobInfo | None:
        rec = self._live(job_id, self.clock.now())
        if rec is None:
            return None
        info = rec.info()
        if info.status is JobStatus.SCHEDULED and rec.run_at <= self.clock.now():
            return dataclasses.replace(info, status=JobStatus.QUEUED)
        return info

    async def wait_finished(self, job_id: str, timeout: float | None) -> JobInfo | None:
        rec = self._live(job_id, self.clock.now())
        if rec is None or rec.status.finished:
            return None if rec is None else rec.info()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._finish_waiters.setdefault(job_id, []).append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise TimeoutError(f"job {job_id} not finished after {timeout}s") from None
        finally:
            # a waiter left behind would be woken on its (maybe closed) loop by complete()
            waiters = self._finish_waiters.get(job_id, [])
            if fut in waiters:
                waiters.remove(fut)
        rec = self.jobs.get(job_id)
        return None if rec is None else rec.info()

    async def cancel(self, job_id: str) -> bool:
        now = self.clock.now()
        rec = self._live(job_id, now)
        if rec is None or rec.status.finished:
            return False
        if rec.status is JobStatus.ACTIVE:
            rec.cancel_requested = True
            return True
        rec.status = JobStatus.CANCELLED
        rec.error = ErrorInfo("Cancelled", "cancelled before it ran")
        self._finished(rec, now)
        return True

    async def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        rec = self.jobs.get(job_id)
        if rec is not None:
            rec.progress = fraction
            rec.progress_message = message

    async def list_jobs(
        self,
        status: JobStatus,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        now = self.clock.now()
        recs = [
            r
            for r in self.jobs.values()
            if self._status(r, now) is status
            and (queue is None or r.queue == queue)
            and not self._expired(r, now)
        ]
        recs.sort(key=lambda r: r.seq)
        # like get_job: a scheduled job that is due is reported (and listed) as queued
        return [dataclasses.replace(r.info(), status=status) for r in recs[offset : offset + limit]]

    async def retry_dead(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        now = self.clock.now()
        wanted = None if job_ids is None else set(job_ids)
        count = 0
        for rec in list(self.jobs.values()):
            if rec.status is not JobStatus.DEAD:
                continue
            if wanted is not None and rec.id not in wanted:
                continue
            if queue is not None and rec.queue != queue:
                continue
            rec.status = JobStatus.QUEUED
            rec.attempts = 0
            rec.deaths = 0
            rec.error = None
            rec.finished_at = None
            rec.run_at = now
            self._push(rec, now)
            count += 1
        if count:
            self._notify_work()
        return count

    async def purge(self, status: JobStatus, queue: str | None = None) -> int:
        now = self.clock.now()
        doomed = [
            r.id
            for r in self.jobs.values()
            if self._status(r, now) is status
            and (queue is None or r.queue == queue)
            and not self._expired(r, now)
        ]
        for job_id in doomed:
            del self.jobs[job_id]
        return len(doomed)

    async def stats(self) -> list[QueueStats]:
        now = self.clock.now()
        counts: dict[str, dict[JobStatus, int]] = {name: {} for name in self._queues}
        for rec in self.jobs.values():
            if self._expired(rec, now):
                continue
            status = rec.status
            if status is JobStatus.SCHEDULED and rec.run_at <= now:
                status = JobStatus.QUEUED
            per = counts.setdefault(rec.queue, {})
            per[status] = per.get(status, 0) + 1
        return [QueueStats(name, c) for name, c in sorted(counts.items())]

    # -- test helpers ------------------------------------------------------------

    def next_due(self) -> float | None:
        """Earliest future due time or lease expiry, for a test clock to jump to."""
        jobs = self.jobs
        times: list[float] = []
        for q in self._queues.values():
            delayed = q.delayed
            # drop entries left behind by cancels and re-pushes (heaps delete lazily)
            while delayed:
                _, _, job_id, version = delayed[0]
                rec = jobs.get(job_id)
                if rec is not None and rec.version == version and rec.status in _WAITING:
                    times.append(delayed[0][0])
                    break
                heapq.heappop(delayed)
        leases = self._leases
        # a finished or renewed job leaves its old lease entry behind: skip those
        while leases:
            until, job_id, token = leases[0]
            rec = jobs.get(job_id)
            if (
                rec is not None
                and rec.status is JobStatus.ACTIVE
                and rec.token == token
                and rec.lease_until == until
            ):
                times.append(until)
                break
            heapq.heappop(leases)
        return min(times) if times else None
