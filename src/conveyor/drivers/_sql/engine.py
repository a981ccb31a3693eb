"""What the SQL drivers share above their client library: the connection pool's life,
the schema check, and the idle logic of ``reserve`` and ``wait_for_work``.

A dialect subclass supplies the storage steps: opening and closing its pool, running
SQL, reading the schema version, and one reserve call (``_take``) that also reports
when the next job is due.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from conveyor.core.job import JobInfo, JobStatus
from conveyor.drivers._coalescer import Coalescer
from conveyor.drivers._sql import migrations as _migrations
from conveyor.drivers._sql import resources
from conveyor.drivers._sql.finished import FinishWaiters
from conveyor.drivers._sql.idle import WorkTracker
from conveyor.drivers._sql.loops import on_home_loop
from conveyor.drivers._sql.options import SqlOptions
from conveyor.drivers._sql.pruning import Pruner
from conveyor.drivers._sql.rows import check_priorities, job_info
from conveyor.drivers.base import Driver, NewJob, QueueStats, Reserved
from conveyor.exceptions import BrokerError, SchemaError

#: reserve takes jobs due within this many seconds (so jobs meant to run together do)
DUE_GRACE = 0.001


#: most jobs one coalesced write carries
COALESCE_MAX = 1000


class SqlDriver(Driver):
    """The dialect-neutral half of a SQL driver."""

    dialect: str = ""

    def __init__(self, options: SqlOptions, names: dict[str, str]) -> None:
        self.options = options
        self._names = names
        self._q = resources.queries(self.dialect, names)
        self._scripts = resources.migrations(self.dialect, names)
        self._latest = self._scripts[-1][0]
        self._pool: Any = None
        self._home: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self._schema_ok = False
        self._fresh_state()

    def _fresh_state(self) -> None:
        """Per-loop helpers, made anew when the driver moves to another loop."""
        self._tracker = WorkTracker()
        self._finish = FinishWaiters()
        self._pruner = Pruner(self._prune)
        self._coalescer: Coalescer[NewJob] = Coalescer(self._write_jobs, COALESCE_MAX)

    @property
    def where(self) -> str:
        return self.options.where

    # -- what a dialect supplies ------------------------------------------------------

    @abstractmethod
    async def _open_pool(self) -> Any:
        """A new pool; raise :class:`BrokerUnavailableError` if the server is unreachable,
        :class:`SchemaError` if it can't run Conveyor at all (e.g. too old a version)."""

    @abstractmethod
    async def _close_pool(self, pool: Any) -> None: ...

    @abstractmethod
    def _terminate_pool(self, pool: Any) -> None:
        """Drop a pool without talking to the server (its loop is gone)."""

    @abstractmethod
    async def _read_version(self, conn: Any = None) -> int | None: ...

    @abstractmethod
    async def _fetch(self, name: str, *args: Any) -> list[Any]:
        """The rows of the named query (one of the dialect's SQL resources)."""

    @abstractmethod
    async def _take(
        self, queues: Sequence[str], limit: int, lease: float
    ) -> tuple[list[Reserved], bool, float | None]:
        """One reserve call: the jobs taken, whether that was all that was due (fewer
        than ``limit``), and seconds until the next waiting job or lease expiry."""

    @abstractmethod
    async def _prune(self, batch: int) -> int: ...

    @abstractmethod
    async def _write_jobs(self, jobs: Sequence[NewJob]) -> None:
        """Store ``jobs`` in one transaction (a lost connection retried)."""

    @abstractmethod
    async def _migrate(self, upto: int | None) -> int: ...

    async def _stop_extras(self) -> None:
        """Stop what runs beside the pool (a listener)."""

    def _idle(self) -> None:
        """Called when a worker first waits for work (start a listener)."""

    # -- connections ------------------------------------------------------------------

    async def connect(self) -> None:
        await self._get_pool()

    async def _get_pool(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pool is not None and self._home is loop:
            return self._pool
        if self._home is not None and self._home is not loop:
            if self._home.is_running() and not self._home.is_closed():
                raise BrokerError(f"{self.where}: driver used from two running event loops")
            await self._rehome()
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        connecting = self._connecting = loop.create_future()
        try:
            pool = await self._open_pool()
        except Exception as exc:  # unreachable, or refused (e.g. an unsupported server)
            connecting.set_exception(exc)
            connecting.exception()  # retrieved: there may be nobody else waiting
            raise
        finally:
            self._connecting = None
        self._pool, self._home = pool, loop
        connecting.set_result(pool)
        with contextlib.suppress(BrokerError, SchemaError):  # said on first use, not here:
            await self._ready()  # `conveyor migrate` connects to an unmigrated database too
        return pool

    @on_home_loop
    async def close(self) -> None:
        await self._pruner.stop()
        await self._coalescer.close()
        await self._stop_extras()
        self._tracker.trusted = False
        pool, self._pool = self._pool, None
        self._home = None
        if pool is not None:
            await self._close_pool(pool)

    async def _rehome(self) -> None:
        """The home loop is gone: drop what was bound to it, reconnect on this loop."""
        pool, self._pool = self._pool, None
        self._home = None
        self._connecting = None
        if pool is not None:
            with contextlib.suppress(Exception):
                self._terminate_pool(pool)
        self._fresh_state()

    # -- schema -----------------------------------------------------------------------

    async def _ready(self) -> None:
        """Check the schema once: a SQL server is never migrated behind the user's back."""
        if not self._schema_ok:
            _migrations.require_current(await self._read_version(), self._latest, self.where)
            self._schema_ok = True

    @on_home_loop
    async def _check_schema(self) -> None:
        await self._ready()

    @on_home_loop
    async def migrate(self) -> int:
        """Create or upgrade the schema (idempotent, safe from several processes at once)."""
        version = await self._migrate(None)
        self._schema_ok = version == self._latest
        return version

    @on_home_loop
    async def migrate_to(self, version: int) -> int:
        """Migrate only up to ``version`` (for tests of upgrades from older versions)."""
        return await self._migrate(version)

    @on_home_loop
    async def schema_version(self) -> int | None:
        """The schema version of the database, or ``None`` if it has no Conveyor schema."""
        return await self._read_version()

    # -- reserving and waiting --------------------------------------------------------

    @on_home_loop
    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        """One write; concurrent callers in this process share one: a call that finds no
        write in flight goes at once, those that come meanwhile go together in the next
        (:mod:`~conveyor.drivers._coalescer`)."""
        if not jobs:
            return
        check_priorities(jobs)
        await self._ready()
        await self._coalescer.submit(jobs)
        self._signal_jobs(jobs)

    def _signal_jobs(self, jobs: Sequence[NewJob]) -> None:
        """Tell this process's waiters about jobs it just enqueued."""
        now = time.time()
        due: dict[str, float] = {}
        for job in jobs:
            delay = (job.eta - now) if job.eta is not None else job.delay
            due[job.queue] = min(due.get(job.queue, math.inf), delay)
        for queue, delay in due.items():
            self._tracker.signal(queue, delay)

    @on_home_loop
    async def reserve(
        self, queues: Sequence[str], limit: int, lease: float, worker_id: str
    ) -> list[Reserved]:
        if limit <= 0 or not queues:
            return []
        key = tuple(queues)
        tracker = self._tracker
        if tracker.trusted and not tracker.dirty(key):
            return []  # nothing was added or came due since the last look
        await self._ready()
        self._pruner.start()
        started = tracker.now()
        jobs, complete, due_in = await self._take(key, limit, lease)
        tracker.answered(key, started, complete=complete, found=len(jobs), due_in=due_in)
        return jobs

    async def _check(self, key: tuple[str, ...]) -> bool:
        """Is a job due in ``key``'s queues? (A reserve of none: expired leases go back.)"""
        started = self._tracker.now()
        _, _, due_in = await self._take(key, 0, 0.0)
        ready = due_in is not None and due_in <= DUE_GRACE
        self._tracker.answered(key, started, complete=not ready, found=0, due_in=due_in)
        return ready

    @on_home_loop
    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        key = tuple(queues)
        tracker = self._tracker
        await self._ready()
        self._idle()
        deadline = tracker.now() + timeout
        while True:
            if tracker.dirty(key) and await self._check(key):
                return
            if tracker.now() >= deadline:
                return
            await tracker.wait(key, min(deadline, tracker.deadline(key)))

    # -- inspection (the same on every dialect) ------------------------------------------

    @on_home_loop
    async def get_job(self, job_id: str) -> JobInfo | None:
        rows = await self._fetch("get_job", job_id)
        return job_info(rows[0]) if rows else None

    @on_home_loop
    async def stats(self) -> list[QueueStats]:
        await self._ready()
        counts: dict[str, dict[JobStatus, int]] = {}
        for queue, state, n in await self._fetch("stats"):
            counts.setdefault(queue, {})[JobStatus(state)] = int(n)
        return [QueueStats(name, c) for name, c in sorted(counts.items())]

    # -- finishing --------------------------------------------------------------------

    @on_home_loop
    async def wait_finished(self, job_id: str, timeout: float | None) -> JobInfo | None:
        return await self._finish.wait(job_id, timeout, self.get_job)

    @on_home_loop
    async def prune(self, batch: int = 500) -> int:
        """Delete up to ``batch`` expired results and old cancelled jobs; return how many.

        Workers do this on their own every few seconds; this is for tests and scripts.
        """
        return await self._prune(batch)
