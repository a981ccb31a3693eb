"""``sqlite://``: the embedded default broker, one file shared by the processes of a machine.

How it works:

* Stdlib :mod:`sqlite3` on one dedicated thread per driver. Every driver call is one hop
  to that thread doing one whole transaction, so a batch of jobs costs one hop, not one
  per job or per statement.
* WAL journal, ``synchronous=NORMAL``, a busy timeout, and ``BEGIN IMMEDIATE`` for every
  write transaction: SQLite serialises the writers of all processes, so two workers never
  reserve the same job, and nobody deadlocks upgrading a read to a write.
* The broker clock is this machine's wall clock (:func:`time.time`).
* Wake-ups: work created through this driver wakes its waiters at once; commits made by
  other connections (other processes, a user's transaction) are noticed through
  ``PRAGMA data_version``, checked a few times per second while idle.
* The schema is created or upgraded on connect (two processes may race; ``BEGIN
  IMMEDIATE`` makes one wait for the other). The SQL lives in ``_sql/sqlite/``.

URLs: ``sqlite:///conveyor.db`` (relative), ``sqlite:////var/lib/app/conveyor.db``
(absolute), ``sqlite://:memory:`` (private to one driver), ``?busy_timeout=10``.
"""

from __future__ import annotations

import asyncio
import functools
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Concatenate, ParamSpec, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

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
from conveyor.exceptions import (
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    DispatchError,
    SchemaError,
)

P = ParamSpec("P")
T = TypeVar("T")

_BUSY_TIMEOUT = 10.0
_RECOVERY_INTERVAL = 0.5  # longest wait before leases taken by other processes are swept
_PRUNE_INTERVAL = 1.0
_PRUNE_BATCH = 1000
_IDLE_POLL = 0.25  # how often an idle waiter looks for commits by other connections
_FINISH_POLL_MAX = 0.25
_FINISHED_KINDS = {OutcomeKind.SUCCEEDED, OutcomeKind.DEAD, OutcomeKind.CANCELLED}


# -- SQL resources ------------------------------------------------------------------


def _sql_dir() -> Any:
    return resources.files("conveyor.drivers").joinpath("_sql").joinpath("sqlite")


@functools.cache
def _queries() -> dict[str, str]:
    """The named queries of ``queries.sql`` (blocks headed ``-- name: <name>``)."""
    text = _sql_dir().joinpath("queries.sql").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        out[name.strip()] = body[: body.rindex(";") + 1].strip()
    return out


@functools.cache
def _migrations() -> tuple[tuple[int, str], ...]:
    """``schema_vN.sql`` scripts by version; script N upgrades a version N-1 database."""
    found: dict[int, str] = {}
    for entry in _sql_dir().iterdir():
        match = re.fullmatch(r"schema_v(\d+)\.sql", entry.name)
        if match:
            found[int(match.group(1))] = entry.read_text(encoding="utf-8")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise SchemaError(f"SQLite migrations are not numbered 1..N: {sorted(found)}")
    return tuple(sorted(found.items()))


def _statements(script: str) -> Iterator[str]:
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            yield buf.strip()
            buf = ""
    if any(ln.strip() and not ln.strip().startswith("--") for ln in buf.splitlines()):
        raise SchemaError(f"incomplete SQL statement at the end of a migration: {buf!r}")


# -- helpers --------------------------------------------------------------------------


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _notify(futures: Sequence[asyncio.Future[None]]) -> None:
    for fut in futures:
        try:
            fut.get_loop().call_soon_threadsafe(_wake, fut)
        except RuntimeError:  # its loop is closed: nobody is waiting any more
            pass


@contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[float]:
    """A write transaction; yields the time read once the write lock is held."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield time.time()
    except BaseException:
        conn.rollback()
        raise
    conn.execute("COMMIT")


def _info(row: Sequence[Any], now: float) -> JobInfo:
    (job_id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result,
     error_type, error_message, traceback, progress, progress_message, finished_at,
     cancel_requested) = row  # fmt: skip
    status = JobStatus(state)
    if status is JobStatus.SCHEDULED and run_at <= now:
        status = JobStatus.QUEUED
    return JobInfo(
        id=job_id,
        task=task,
        queue=queue,
        status=status,
        attempts=attempts,
        priority=priority,
        run_at=run_at,
        enqueued_at=enqueued_at,
        payload=payload,
        result=result,
        error=None
        if error_type is None
        else ErrorInfo(error_type, error_message or "", traceback or ""),
        progress=progress,
        progress_message=progress_message,
        finished_at=finished_at,
        cancel_requested=bool(cancel_requested),
    )


def _status_filter(status: JobStatus) -> dict[str, Any]:
    """Parameters of the ``list_jobs``/``purge`` filter (a due scheduled job is queued)."""
    if status is JobStatus.QUEUED:
        return {"state": "queued", "alt": "scheduled", "due": 1}
    if status is JobStatus.SCHEDULED:
        return {"state": "scheduled", "alt": "scheduled", "due": 0}
    return {"state": status.value, "alt": status.value, "due": 1}


def _error_params(outcome: Outcome) -> tuple[str | None, str | None, str | None]:
    err = outcome.error
    return (None, None, None) if err is None else (err.type, err.message, err.traceback)


def _check_priorities(jobs: Sequence[NewJob]) -> None:
    for job in jobs:
        if not 0 <= job.priority <= 9:
            raise DispatchError(f"job {job.id}: priority {job.priority} is outside 0..9")


def _job_rows(jobs: Sequence[NewJob], now: float) -> list[tuple[Any, ...]]:
    rows = []
    for job in jobs:
        run_at = job.eta if job.eta is not None else now + max(job.delay, 0.0)
        state = "scheduled" if run_at > now else "queued"
        rows.append((job.id, job.task, job.queue, job.payload, job.priority, run_at, now, state))
    return rows


def _is_aiosqlite(connection: Any) -> bool:
    try:
        import aiosqlite
    except ImportError:  # then it cannot be an aiosqlite connection either
        return False
    return isinstance(connection, aiosqlite.Connection)


@dataclass(frozen=True, slots=True)
class _WorkCheck:
    version: int
    ready: bool = False
    next_event: float | None = None  # None: nothing looked at (no commit seen)
    recovered: int = 0


# -- the driver -------------------------------------------------------------------------


class SqliteDriver(Driver):
    """A broker in one SQLite file; safe for several worker processes on one machine."""

    schemes = ("sqlite",)

    def __init__(self, path: str = "conveyor.db", *, busy_timeout: float = _BUSY_TIMEOUT) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._q = _queries()
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()  # guards the waiter lists (waiters may be on other loops)
        self._work_waiters: list[asyncio.Future[None]] = []
        self._finish_waiters: dict[str, list[asyncio.Future[None]]] = {}
        # touched only on the driver's thread:
        self._conn: sqlite3.Connection | None = None
        self._next_recovery = 0.0
        self._next_prune = 0.0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SqliteDriver:
        """``sqlite:///relative.db``, ``sqlite:////absolute.db`` or ``sqlite://:memory:``.

        Options other than ``busy_timeout`` (e.g. ``clock``) are ignored: SQLite's clock
        is the machine's wall clock.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "sqlite":
            raise ConfigurationError(f"not a sqlite:// URL: {url!r}")
        if parts.netloc == ":memory:" or parts.path == "/:memory:":
            path = ":memory:"
        elif parts.netloc or len(parts.path) < 2:
            raise ConfigurationError(
                f"bad SQLite URL {url!r}: expected sqlite:///relative/path.db "
                "or sqlite:////absolute/path.db"
            )
        else:
            path = unquote(parts.path[1:])
        busy_timeout = float(options.get("busy_timeout", _BUSY_TIMEOUT))
        for key, value in parse_qsl(parts.query):
            if key != "busy_timeout":
                raise ConfigurationError(f"unknown option {key!r} in SQLite URL {url!r}")
            try:
                busy_timeout = float(value)
            except ValueError:
                raise ConfigurationError(f"busy_timeout must be seconds, not {value!r}") from None
        return cls(path, busy_timeout=busy_timeout)

    # -- the thread -------------------------------------------------------------------

    async def connect(self) -> None:
        if self._executor is not None:
            return
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conveyor-sqlite")
        self._executor = executor
        try:
            await self._hop(self._open)
        except BaseException:
            self._executor = None
            executor.shutdown(wait=False)
            raise

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
        finally:
            executor.shutdown(wait=False)

    async def _hop(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the driver's thread, turning sqlite3 errors into BrokerError."""
        if self._executor is None:
            await self.connect()
        executor = self._executor
        assert executor is not None
        return await asyncio.get_running_loop().run_in_executor(executor, self._guard, call)

    async def _call(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run ``fn(connection, ...)`` on the driver's thread: one hop, one transaction."""

        def call() -> T:
            if self._conn is None:
                raise BrokerUnavailableError(f"SQLite database {self.path!r} is not open")
            return fn(self._conn, *args, **kwargs)

        return await self._hop(call)

    def _guard(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except sqlite3.Error as exc:
            conn = self._conn
            if conn is not None and conn.in_transaction:
                try:
                    conn.rollback()
                except sqlite3.Error:
                    pass
            raise BrokerError(f"SQLite database {self.path!r}: {exc}") from exc

    def _open(self) -> None:
        path = self.path
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise BrokerUnavailableError(
                    f"cannot open SQLite database {path!r}: directory {directory!r} does not exist"
                )
        try:
            conn = sqlite3.connect(path, timeout=self.busy_timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise BrokerUnavailableError(f"cannot open SQLite database {path!r}: {exc}") from exc
        try:
            self._set_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")
            if self._read_version(conn) != _migrations()[-1][0]:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        # Switching to WAL needs a moment of exclusive access and may not wait on the busy
        # handler when another process is switching too: retry until the busy timeout.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _close_conn(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # -- schema -------------------------------------------------------------------------

    def _read_version(self, conn: sqlite3.Connection) -> int | None:
        if conn.execute(self._q["has_meta"]).fetchone() is None:
            return None
        row = conn.execute(self._q["get_version"]).fetchone()
        return None if row is None else int(row[0])

    def _migrate(self, conn: sqlite3.Connection) -> int:
        migrations = _migrations()
        latest = migrations[-1][0]
        with _write(conn):
            conn.execute(self._q["create_meta"])
            current = self._read_version(conn) or 0
            if current > latest:
                raise SchemaError(
                    f"SQLite database {self.path!r} has schema version {current}, newer than "
                    f"this version of conveyor knows ({latest}): upgrade conveyor"
                )
            for version, script in migrations:
                if version > current:
                    for statement in _statements(script):
                        conn.execute(statement)
            if current != latest:
                conn.execute(self._q["set_version"], (str(latest),))
        return latest

    async def migrate(self) -> int:
        """Create or upgrade the schema (idempotent); return its version."""
        return await self._call(self._migrate)

    async def schema_version(self) -> int | None:
        """The schema version of the database, or ``None`` if it has no Conveyor schema."""
        return await self._call(self._read_version)

    # -- waiters ------------------------------------------------------------------------

    def _notify_work(self) -> None:
        with self._lock:
            waiters, self._work_waiters = self._work_waiters, []
        _notify(waiters)

    def _notify_finished(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            waiters = [f for i in job_ids for f in self._finish_waiters.pop(i, ())]
        _notify(waiters)

    def _discard_waiter(self, fut: asyncio.Future[None], job_id: str | None = None) -> None:
        with self._lock:
            waiters = self._work_waiters if job_id is None else self._finish_waiters.get(job_id)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)
                if job_id is not None and not waiters:
                    del self._finish_waiters[job_id]

    # -- hot path -----------------------------------------------------------------------

    async def now(self) -> float:
        return time.time()

    async def ping(self) -> None:
        await self._call(lambda conn: conn.execute("SELECT 1").fetchone())

    def missing(self) -> str | None:
        if self.path == ":memory:" or os.path.exists(self.path):
            return None
        return f"SQLite database {self.path!r} does not exist"

    async def enqueue(self, jobs: Sequence[NewJob]) -> None:
        if not jobs:
            return
        _check_priorities(jobs)
        await self._call(self._enqueue_tx, jobs)
        self._notify_work()

    def _enqueue_tx(self, conn: sqlite3.Connection, jobs: Sequence[NewJob]) -> None:
        with _write(conn) as now:
            conn.executemany(self._q["insert_job"], _job_rows(jobs, now))

    async def enqueue_in(self, connection: Any, jobs: Sequence[NewJob]) -> None:
        """Enqueue inside the caller's open transaction on an ``aiosqlite`` connection.

        The jobs exist when, and only if, the caller commits. The connection must be
        open on the same database file as this driver.
        """
        if not _is_aiosqlite(connection):
            raise ConfigurationError(
                "the sqlite driver enqueues in a transaction only on an aiosqlite.Connection "
                f"open on {self.path!r}, not on {type(connection).__name__}"
            )
        _check_priorities(jobs)
        if not jobs:
            return
        try:
            await connection.executemany(self._q["insert_job"], _job_rows(jobs, time.time()))
        except sqlite3.Error as exc:
            raise BrokerError(
                f"enqueue in the caller's transaction (is it open on {self.path!r}?): {exc}"
            ) from exc

    async def reserve(
        self, queues: Sequence[str], limit: int, lease: float, worker_id: str
    ) -> list[Reserved]:
        if limit <= 0:
            return []
        out, recovered = await self._call(self._reserve_tx, queues, limit, lease)
        if recovered:
            self._notify_work()
        return out

    def _maintain(self, conn: sqlite3.Connection, now: float, *, force: bool = False) -> int:
        """In a write transaction: requeue expired leases, prune expired results (throttled).

        Leases this driver handed out are swept as soon as they expire; leases of other
        processes at most ``_RECOVERY_INTERVAL`` later.
        """
        recovered = 0
        if force or now >= self._next_recovery:
            recovered = conn.execute(self._q["recover_leases"], (now,)).rowcount
            (nxt,) = conn.execute(self._q["next_lease_expiry"]).fetchone()
            self._next_recovery = now + _RECOVERY_INTERVAL
            if nxt is not None:
                self._next_recovery = min(self._next_recovery, nxt)
        if now >= self._next_prune:
            conn.execute(self._q["prune_results"], (now, _PRUNE_BATCH))
            self._next_prune = now + _PRUNE_INTERVAL
        return recovered

    def _reserve_tx(
        self, conn: sqlite3.Connection, queues: Sequence[str], limit: int, lease: float
    ) -> tuple[list[Reserved], int]:
        sql = self._q["reserve"]
        out: list[Reserved] = []
        with _write(conn) as now:
            recovered = self._maintain(conn, now)
            for name in queues:
                rows = conn.execute(sql, (now + lease, name, now, limit - len(out))).fetchall()
                if not rows:
                    continue
                rows.sort(key=lambda r: (r[5], r[7], r[8]))  # priority, run_at, seq
                # RETURNING lists Reserved's fields in order, then run_at and seq
                out.extend(Reserved(*r[:7]) for r in rows)
                if len(out) >= limit:
                    break
        if out:
            self._next_recovery = min(self._next_recovery, now + lease)
        return out, recovered

    async def renew(self, held: Sequence[tuple[str, str]], lease: float) -> RenewResult:
        result, recovered = await self._call(self._renew_tx, held, lease)
        if recovered:
            self._notify_work()
        return result

    def _renew_tx(
        self, conn: sqlite3.Connection, held: Sequence[tuple[str, str]], lease: float
    ) -> tuple[RenewResult, int]:
        sql = self._q["renew"]
        lost: set[str] = set()
        cancel: set[str] = set()
        with _write(conn) as now:
            recovered = self._maintain(conn, now)
            for job_id, token in held:
                rows = conn.execute(sql, (now + lease, job_id, token, now)).fetchall()
                if not rows:
                    lost.add(job_id)
                elif rows[0][0]:
                    cancel.add(job_id)
        return RenewResult(frozenset(lost), frozenset(cancel)), recovered

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        done = await self._call(self._complete_tx, outcomes)
        finished = [
            o.id for o, ok in zip(outcomes, done, strict=True) if ok and o.kind in _FINISHED_KINDS
        ]
        if finished:
            self._notify_finished(finished)
        if len(finished) < sum(done):
            self._notify_work()
        return done

    def _complete_tx(self, conn: sqlite3.Connection, outcomes: Sequence[Outcome]) -> list[bool]:
        q = self._q
        cur = conn.cursor()
        execute = cur.execute
        done: list[bool] = []
        with _write(conn) as now:
            for o in outcomes:
                kind = o.kind
                if kind is OutcomeKind.SUCCEEDED:
                    if o.result_ttl > 0:
                        params: tuple[Any, ...] = (o.result, now + o.result_ttl, now, o.id, o.token)
                        execute(q["complete_succeeded"], params)
                    else:
                        execute(q["complete_forget"], (o.id, o.token))
                elif kind is OutcomeKind.DEAD or kind is OutcomeKind.CANCELLED:
                    state = "dead" if kind is OutcomeKind.DEAD else "cancelled"
                    params = (state, *_error_params(o), now, o.id, o.token)
                    execute(q["complete_finished"], params)
                elif kind is OutcomeKind.RETRY:
                    params = (now + max(o.delay, 0.0), *_error_params(o), o.id, o.token)
                    execute(q["complete_retry"], params)
                else:  # SNOOZE, RELEASE: the attempt is given back
                    state = "scheduled" if o.delay > 0 else "queued"
                    params = (state, now + max(o.delay, 0.0), o.id, o.token)
                    execute(q["complete_requeue"], params)
                done.append(cur.rowcount == 1)
        return done

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:  # registered before looking, so no enqueue slips in between
            self._work_waiters.append(fut)
        try:
            version: int | None = None  # None: look at the jobs whatever the data version
            next_event = math.inf
            while True:
                check = await self._call(self._check_work, list(queues), version)
                if check.recovered:
                    self._notify_work()
                if check.ready or fut.done():
                    return
                version = check.version
                if check.next_event is not None:
                    next_event = check.next_event
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return
                until_event = max(next_event - time.time(), 0.0)
                await asyncio.wait({fut}, timeout=min(remaining, until_event, _IDLE_POLL))
                if fut.done():
                    return
                if time.time() >= next_event:
                    version = None
        finally:
            self._discard_waiter(fut)

    def _check_work(
        self, conn: sqlite3.Connection, queues: Sequence[str], seen_version: int | None
    ) -> _WorkCheck:
        """Is a job due in ``queues``? Else when may one be (a due time or a lease expiry)?"""
        (version,) = conn.execute("PRAGMA data_version").fetchone()
        if version == seen_version:
            return _WorkCheck(version)
        q = self._q
        now = time.time()
        recovered = 0
        (lease_expiry,) = conn.execute(q["next_lease_expiry"]).fetchone()
        if lease_expiry is not None and lease_expiry <= now:
            with _write(conn) as now:
                recovered = self._maintain(conn, now, force=True)
            (lease_expiry,) = conn.execute(q["next_lease_expiry"]).fetchone()
        next_event = math.inf if lease_expiry is None else lease_expiry
        for name in queues:
            (due,) = conn.execute(q["next_due"], (name,)).fetchone()
            if due is not None:
                if due <= now:
                    return _WorkCheck(version, True, next_event, recovered)
                next_event = min(next_event, due)
        return _WorkCheck(version, False, next_event, recovered)

    # -- inspection and management ----------------------------------------------------------

    async def get_job(self, job_id: str) -> JobInfo | None:
        return await self._call(self._get_job_tx, job_id)

    def _get_job_tx(self, conn: sqlite3.Connection, job_id: str) -> JobInfo | None:
        now = time.time()
        row = conn.execute(self._q["get_job"], (job_id, now)).fetchone()
        return None if row is None else _info(row, now)

    async def wait_finished(self, job_id: str, timeout: float | None) -> JobInfo | None:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = 0.01  # polls catch finishes by other processes; ours wake us at once
        fut: asyncio.Future[None] | None = None
        try:
            while True:
                if fut is None or fut.done():
                    if fut is not None:
                        self._discard_waiter(fut, job_id)
                    fut = loop.create_future()
                    with self._lock:
                        self._finish_waiters.setdefault(job_id, []).append(fut)
                info = await self.get_job(job_id)
                if info is None or info.status.finished:
                    return info
                pause = interval
                if deadline is not None:
                    pause = min(pause, deadline - loop.time())
                    if pause <= 0:
                        raise TimeoutError(f"job {job_id} not finished after {timeout}s")
                await asyncio.wait({fut}, timeout=pause)
                interval = min(interval * 2, _FINISH_POLL_MAX)
        finally:
            if fut is not None:
                self._discard_waiter(fut, job_id)

    async def cancel(self, job_id: str) -> bool:
        outcome = await self._call(self._cancel_tx, job_id)
        if outcome == "cancelled":
            self._notify_finished([job_id])
        return outcome is not None

    def _cancel_tx(self, conn: sqlite3.Connection, job_id: str) -> str | None:
        with _write(conn) as now:
            if conn.execute(self._q["cancel_waiting"], (now, job_id)).rowcount:
                return "cancelled"
            if conn.execute(self._q["cancel_active"], (job_id,)).rowcount:
                return "requested"
        return None

    async def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        await self._call(self._write_one, "set_progress", (fraction, message, job_id))

    def _write_one(self, conn: sqlite3.Connection, name: str, params: Any) -> int:
        with _write(conn):
            return conn.execute(self._q[name], params).rowcount

    async def list_jobs(
        self,
        status: JobStatus,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        return await self._call(self._list_tx, status, queue, limit, offset)

    def _list_tx(
        self,
        conn: sqlite3.Connection,
        status: JobStatus,
        queue: str | None,
        limit: int,
        offset: int,
    ) -> list[JobInfo]:
        now = time.time()
        params: dict[str, Any] = {"queue": queue, "limit": limit, "offset": offset, "now": now}
        if status is JobStatus.DEAD:
            name = "list_dead" if queue is None else "list_dead_in_queue"
        else:
            name = "list_jobs"
            params.update(_status_filter(status))
        return [_info(row, now) for row in conn.execute(self._q[name], params)]

    async def retry_dead(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        count = await self._call(self._retry_dead_tx, job_ids, queue)
        if count:
            self._notify_work()
        return count

    def _retry_dead_tx(
        self, conn: sqlite3.Connection, job_ids: Sequence[str] | None, queue: str | None
    ) -> int:
        with _write(conn) as now:
            if job_ids is None:
                return conn.execute(
                    self._q["retry_dead_all"], {"now": now, "queue": queue}
                ).rowcount
            rows = [{"now": now, "queue": queue, "id": i} for i in dict.fromkeys(job_ids)]
            return conn.executemany(self._q["retry_dead_one"], rows).rowcount

    async def purge(self, status: JobStatus, queue: str | None = None) -> int:
        params = {"queue": queue, "now": time.time(), **_status_filter(status)}
        return await self._call(self._write_one, "purge", params)

    async def stats(self) -> list[QueueStats]:
        rows = await self._call(
            lambda conn: conn.execute(self._q["stats"], {"now": time.time()}).fetchall()
        )
        counts: dict[str, dict[JobStatus, int]] = {}
        for queue, state, n in rows:
            counts.setdefault(queue, {})[JobStatus(state)] = n
        return [QueueStats(name, c) for name, c in sorted(counts.items())]
