"""``redis://`` and ``rediss://``: Redis 6.2+ or Valkey, through redis-py asyncio and hiredis.

How it works (the key layout and the reasons are in ``docs/redis.md``):

* Every change of state is one Lua script (``drivers/_lua/``), so it is atomic, and every
  batch is one call: ``enqueue``, ``reserve``, ``renew`` and ``complete`` cost one round
  trip each, whatever the number of jobs. ``reserve`` also recovers expired leases and
  promotes due delayed jobs, in the same atomic call.
* Due times and leases are judged by the Redis clock (``TIME`` inside the scripts).
* Idle workers block: the scripts publish which queues got work and which jobs finished,
  and one pub/sub connection per driver wakes the waiters
  (:mod:`~conveyor.drivers._redis.listener`).
* Concurrent ``enqueue`` calls of one process are coalesced into one write
  (:mod:`~conveyor.drivers._coalescer`).
* A lost connection is retried with exponential backoff (``?retries=``); every script is
  safe to run twice (``enqueue`` skips a batch it has stored, ``complete`` answers ``True`` to the
  token that already completed the job), except ``reserve``, whose lost reply leaves
  jobs leased until their lease runs out.
* Connections belong to the event loop that made them: a call from another loop (sync
  code on a private loop) uses a short-lived connection of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from conveyor.core.job import JobInfo, JobStatus
from conveyor.drivers._coalescer import Coalescer
from conveyor.drivers._redis import wire
from conveyor.drivers._redis.link import Link
from conveyor.drivers._redis.listener import Listener
from conveyor.drivers._redis.options import RedisOptions, parse
from conveyor.drivers.base import (
    Driver,
    NewJob,
    Outcome,
    OutcomeKind,
    QueueStats,
    RenewResult,
    Reserved,
)
from conveyor.exceptions import BrokerError, DispatchError

log = logging.getLogger("conveyor.redis")

_CHUNK = 1000  # jobs per call of the management scripts (purge, retry_dead, ...)
_COALESCE_MAX = 5000  # jobs per coalesced enqueue
_FINISH_POLL_MAX = 1.0  # safety net under the pub/sub wake-ups of wait_finished
_FINISHED = frozenset({OutcomeKind.SUCCEEDED, OutcomeKind.DEAD, OutcomeKind.CANCELLED})


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


class RedisDriver(Driver):
    """A broker in Redis (or Valkey); any number of workers on any number of machines."""

    schemes = ("redis", "rediss")

    def __init__(self, options: RedisOptions) -> None:
        self.options = options
        host, _, _ = options.url.partition("?")
        self._where = host.rpartition("@")[2].rpartition("//")[2] or "localhost"
        self._link: Link | None = None
        self._listener: Listener | None = None
        self._coalescer: Coalescer[NewJob] | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisDriver:
        """``redis://host:6379/0?prefix=myapp``; see :mod:`conveyor.drivers._redis.options`.

        Options such as ``clock`` are ignored: due times follow the Redis clock.
        """
        return cls(parse(url))

    @property
    def prefix(self) -> str:
        return self.options.prefix

    @property
    def enqueue_writes(self) -> int:
        """Writes the enqueue coalescer has sent (for tests and metrics)."""
        return 0 if self._coalescer is None else self._coalescer.writes

    # -- connections -------------------------------------------------------------

    async def connect(self) -> None:
        link = self._link
        if link is not None and not link.loop.is_closed():
            return
        link = Link(self.options, self._where)
        try:
            await link.command("PING")
        except BaseException:
            await link.close()
            raise
        if self._link is not None and not self._link.loop.is_closed():
            await link.close()  # another caller connected while we were at it
            return
        self._link = link
        self._listener = Listener(
            link.client,
            self.options.work_channel,
            self.options.done_channel,
            self.options.cancel_channel,
        )
        self._coalescer = Coalescer(self._write_jobs, _COALESCE_MAX)
        await self._check_eviction(link)

    async def _check_eviction(self, link: Link) -> None:
        """Warn when Redis may evict keys: evicted jobs would vanish without a trace."""
        try:
            info = await link.command("INFO", "memory")
        except BrokerError:  # INFO may be disabled on a managed Redis: nothing to say
            return
        policy = info.get("maxmemory_policy") if isinstance(info, dict) else None
        if policy not in (None, "noeviction"):
            log.warning(
                "redis.eviction maxmemory-policy is %r on %s: when memory runs out Redis "
                "drops keys, jobs included; use noeviction for a queue",
                policy,
                self._where,
            )

    async def close(self) -> None:
        link, self._link = self._link, None
        listener, self._listener = self._listener, None
        coalescer, self._coalescer = self._coalescer, None
        if link is None or link.loop.is_closed():
            return
        shutdown = _shutdown(link, listener, coalescer)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is link.loop:
            await shutdown
        elif link.loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown, link.loop)
        else:
            shutdown.close()

    def _home(self) -> Link | None:
        """This loop's link, if this loop is the one the driver connected on."""
        link = self._link
        if link is not None and link.loop is asyncio.get_running_loop():
            return link
        return None

    async def _eval(self, name: str, *args: Any) -> Any:
        """Run script ``name``: on this loop's link, or a short-lived one for another loop."""
        link = self._link
        if link is not None and link.loop is asyncio.get_running_loop():
            return await link.eval(name, *args)
        return await self._elsewhere(Link.eval, name, *args)

    async def _command(self, *args: Any) -> Any:
        link = self._link
        if link is not None and link.loop is asyncio.get_running_loop():
            return await link.command(*args)
        return await self._elsewhere(Link.command, *args)

    async def _elsewhere(self, call: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        if self._link is None or self._link.loop.is_closed():
            await self.connect()  # first use, or the loop we connected on is gone
            assert self._link is not None
            return await call(self._link, *args)
        visitor = Link(self.options, self._where)
        try:
            return await call(visitor, *args)
        finally:
            await visitor.close()

    # -- the hot path ---------------------------------------------------------------

    async def now(self) -> float:
        reply = await self._eval("jobs")
        return int(reply[0]) / 1000

    async def ping(self) -> None:
        await self._command("PING")

    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        if not jobs:
            return
        for job in jobs:
            if not 0 <= job.priority <= 9:
                raise DispatchError(f"job {job.id}: priority {job.priority} is outside 0..9")
        if self._link is None or self._link.loop.is_closed():
            await self.connect()
        coalescer = self._coalescer
        if coalescer is not None and self._home() is not None:
            await coalescer.submit(jobs)
            listener = self._listener
            if listener is not None and listener.has_work_waiters:
                listener.work_arrived({job.queue for job in jobs})
        else:
            await self._eval("enqueue", *wire.pack_jobs(jobs))

    async def _write_jobs(self, jobs: Sequence[NewJob]) -> None:
        link = self._home()
        if link is None:  # closed and reconnected elsewhere while queued
            await self._eval("enqueue", *wire.pack_jobs(jobs))
            return
        await link.eval("enqueue", *wire.pack_jobs(jobs))

    async def reserve(
        self, queues: Sequence[str], limit: int, lease: float, worker_id: str
    ) -> list[Reserved]:
        if limit <= 0 or not queues:
            return []
        reply = await self._eval("reserve", limit, _ms(lease), *queues)
        return wire.reserved(reply, queues)

    async def renew(self, held: Sequence[tuple[str, str]], lease: float) -> RenewResult:
        if not held:
            return RenewResult()
        lost, cancel = await self._eval("renew", _ms(lease), wire.encode(list(held)))
        return RenewResult(
            frozenset(i.decode() for i in lost), frozenset(i.decode() for i in cancel)
        )

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        reply = await self._eval("complete", *wire.pack_outcomes(outcomes))
        done = [flag == 1 for flag in reply]
        self._finished(outcomes, done)
        return done

    async def complete_and_reserve(
        self,
        outcomes: Sequence[Outcome],
        queues: Sequence[str],
        limit: int,
        lease: float,
        worker_id: str,
    ) -> tuple[list[bool], list[Reserved]]:
        if not outcomes:
            return [], await self.reserve(queues, limit, lease, worker_id)
        if limit <= 0 or not queues:
            return await self.complete(outcomes), []
        done_reply, jobs_reply = await self._eval(
            "complete_reserve", 2, *wire.pack_outcomes(outcomes), limit, _ms(lease), *queues
        )
        done = [flag == 1 for flag in done_reply]
        self._finished(outcomes, done)
        return done, wire.reserved(jobs_reply, queues)

    def _finished(self, outcomes: Sequence[Outcome], done: list[bool]) -> None:
        """Tell this process's waiters about the jobs that just finished."""
        listener = self._listener
        if listener is not None and listener.has_done_waiters and self._home() is not None:
            listener.finished(
                o.id for o, ok in zip(outcomes, done, strict=True) if ok and o.kind in _FINISHED
            )

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        if timeout <= 0 or not queues:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        link, listener = self._home(), self._listener
        if link is None or listener is None:  # another loop: look once, then sleep
            now, ready, next_at = await self._eval("probe", *queues)
            if not ready:
                await asyncio.sleep(_until(next_at, now, timeout))
            return
        subscribed = listener.subscribed.is_set() or await listener.ready(min(timeout, 1.0))
        fut: asyncio.Future[None] = loop.create_future()
        listener.watch_work(queues, fut)  # before looking, so no wake-up slips in between
        try:
            now, ready, next_at = await link.eval("probe", *queues)
            if ready or fut.done():
                return
            wait = _until(next_at, now, deadline - loop.time())
            if not subscribed:
                wait = min(wait, 0.25)
            if wait > 0:
                await asyncio.wait({fut}, timeout=wait)
        finally:
            listener.unwatch_work(fut)

    # -- inspection and management ------------------------------------------------------

    async def get_job(self, job_id: str) -> JobInfo | None:
        now, flat = await self._eval("jobs", job_id)
        return wire.job_info(job_id, flat, now)

    async def wait_finished(self, job_id: str, timeout: float | None) -> JobInfo | None:
        listener = self._listener
        if self._home() is None or listener is None:
            return await super().wait_finished(job_id, timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        await listener.ready(1.0 if timeout is None else min(timeout, 1.0), done=True)
        interval = 0.05
        while True:
            fut: asyncio.Future[None] = loop.create_future()
            listener.watch_done(job_id, fut)
            try:
                info = await self.get_job(job_id)
                if info is None or info.status.finished:
                    return info
                pause = interval if listener.subscribed.is_set() else 0.05
                if deadline is not None:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError(f"job {job_id} not finished after {timeout}s")
                    pause = min(pause, remaining)
                await asyncio.wait({fut}, timeout=pause)
            finally:
                listener.unwatch_done(job_id, fut)
            interval = min(interval * 2, _FINISH_POLL_MAX)

    async def cancel(self, job_id: str) -> bool:
        outcome = await self._eval("cancel", job_id)
        return outcome is not None

    def watch_cancels(self, callback: Callable[[str], None]) -> None:
        listener = self._listener
        if listener is None or self._home() is None:
            return  # not connected on this loop: renewals still report cancels
        listener.cancel_watchers.append(callback)
        listener.start()

    def unwatch_cancels(self, callback: Callable[[str], None]) -> None:
        listener = self._listener
        if listener is not None and callback in listener.cancel_watchers:
            listener.cancel_watchers.remove(callback)

    async def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        if message is None:
            await self._eval("progress", job_id, repr(float(fraction)))
        else:
            await self._eval("progress", job_id, repr(float(fraction)), message)

    async def queues(self) -> list[str]:
        """Every queue this app has enqueued to."""
        names = await self._command("SMEMBERS", self.options.queues_key)
        return sorted(name.decode() for name in names)

    async def list_jobs(
        self,
        status: JobStatus,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        if limit <= 0:
            return []
        offset = max(offset, 0)
        if queue is not None and status is not JobStatus.ACTIVE:
            return [info for _, info in await self._list_queue(status, queue, offset, limit)]
        found: list[tuple[tuple[float, ...], JobInfo]] = []
        for name in [queue] if queue is not None else await self.queues():
            found += await self._list_queue(status, name, 0, offset + limit)
        found.sort(key=lambda item: item[0])
        return [info for _, info in found[offset : offset + limit]]

    async def _list_queue(
        self, status: JobStatus, queue: str, offset: int, limit: int
    ) -> list[tuple[tuple[float, ...], JobInfo]]:
        reply = await self._eval("list", status.value, queue, offset, limit)
        now = reply[0]
        out: list[tuple[tuple[float, ...], JobInfo]] = []
        for i in range(1, len(reply), 4):
            group, score, job_id, flat = reply[i : i + 4]
            info = wire.job_info(job_id.decode(), flat, now)
            if info is None:
                continue
            seq = wire.seq_of(flat)
            key = (seq,) if status is JobStatus.ACTIVE else (int(group), float(score), seq)
            out.append((key, info))
        return out

    async def retry_dead(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        total = 0
        if job_ids is not None:
            ids = list(dict.fromkeys(job_ids))
            for i in range(0, len(ids), _CHUNK):
                revived, _ = await self._eval(
                    "retry_dead", queue or "", _CHUNK, "ids", *ids[i : i + _CHUNK]
                )
                total += revived
            return total
        for name in [queue] if queue is not None else await self.queues():
            while True:
                revived, complete = await self._eval("retry_dead", name, _CHUNK, "all")
                total += revived
                if complete:
                    break
        return total

    async def purge(self, status: JobStatus, queue: str | None = None) -> int:
        total = 0
        for name in [queue] if queue is not None else await self.queues():
            while True:
                deleted, complete = await self._eval("purge", status.value, name, _CHUNK)
                total += deleted
                if complete:
                    break
        return total

    async def stats(self) -> list[QueueStats]:
        out: list[QueueStats] = []
        for row in await self._eval("stats"):
            name, ready, delayed, active, succeeded, dead, cancelled, scheduled, retrying = row
            counts = {
                JobStatus.QUEUED: max(ready + delayed - scheduled - retrying, 0),
                JobStatus.SCHEDULED: scheduled,
                JobStatus.ACTIVE: active,
                JobStatus.SUCCEEDED: succeeded,
                JobStatus.RETRYING: retrying,
                JobStatus.DEAD: dead,
                JobStatus.CANCELLED: cancelled,
            }
            out.append(QueueStats(name.decode(), counts))
        return sorted(out, key=lambda s: s.queue)


def _until(next_at: int, now: int, limit: float) -> float:
    """Seconds to wait: until ``next_at`` (broker ms, -1 for never), at most ``limit``."""
    if next_at < 0:
        return max(limit, 0.0)
    return max(min((next_at - now + 1) / 1000, limit), 0.0)


async def _shutdown(
    link: Link, listener: Listener | None, coalescer: Coalescer[Any] | None
) -> None:
    try:
        if coalescer is not None:
            await coalescer.close()
        if listener is not None:
            await listener.close()
    finally:
        await link.close()
