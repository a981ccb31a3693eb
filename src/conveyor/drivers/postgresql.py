"""``postgresql://``: jobs in a PostgreSQL table, next to the application's own data.

How it works:

* asyncpg, with a pool of connections (``?pool_size=``, default 10); statements are
  prepared once per connection and every batch is one statement: ``unnest`` arrays in
  and out, never one round trip per job.
* Reserve is one call of a PL/pgSQL function (``conveyor_reserve``): it puts jobs with
  expired leases back, then takes due jobs queue by queue with
  ``FOR UPDATE SKIP LOCKED``, so workers never wait on each other or take the same job.
* Every due time is judged by the database's ``now()``.
* Concurrent ``dispatch()`` calls in one process share an ``INSERT``: one that finds none
  in flight goes at once, those that arrive meanwhile go together in the next
  (:mod:`~conveyor.drivers._coalescer`).
* Wake-ups: writes that make work due ``NOTIFY`` at commit; a worker ``LISTEN``\\ s on a
  connection of its own, starts a dispatched job within milliseconds, and while idle
  asks the database about once a second (:mod:`conveyor.drivers._sql.idle`).
* Transactional enqueue on the caller's asyncpg connection or SQLAlchemy
  ``AsyncSession``/``AsyncConnection``: the job exists if, and only if, they commit.
* The schema is created and upgraded by ``conveyor migrate`` only; a driver on a
  database that is not current raises :class:`~conveyor.exceptions.SchemaError`.
* Lost connections (a restart, ``pg_terminate_backend``) are replaced: the call is
  retried once on a fresh connection, and then fails with
  :class:`~conveyor.exceptions.BrokerUnavailableError` for the worker to back off.

URL: ``postgresql://user:password@host:5432/db?schema=jobs&table_prefix=conveyor_``;
other query options (``sslmode=...``) go to asyncpg. See ``docs/postgresql.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from conveyor.core.job import JobInfo, JobStatus
from conveyor.drivers._sql import migrations as _migrations
from conveyor.drivers._sql.callers import (
    is_sqlalchemy,
    named_parameters,
    sqlalchemy_connection,
    sqlalchemy_execute,
)
from conveyor.drivers._sql.engine import SqlDriver
from conveyor.drivers._sql.loops import on_home_loop
from conveyor.drivers._sql.options import SqlOptions, parse_options
from conveyor.drivers._sql.pg_listen import Listener
from conveyor.drivers._sql.rows import (
    FINISHED_KINDS,
    check_priorities,
    job_info,
    outcome_code,
    outcome_seconds,
    status_filter,
    unique_outcomes,
)
from conveyor.drivers.base import (
    NewJob,
    Outcome,
    OutcomeKind,
    RenewResult,
    Reserved,
)
from conveyor.exceptions import (
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    SchemaError,
)

T = TypeVar("T")
Conn = Any  # asyncpg.Connection or a pool's proxy of one

_CONNECT_TIMEOUT = 10.0
_RETRY_PAUSE = 0.05

_JOB_COLUMNS = (
    "id, task, queue, state, attempts, priority, "
    "extract(epoch FROM run_at)::double precision, "
    "extract(epoch FROM enqueued_at)::double precision, payload, result, "
    "error_type, error_message, traceback, progress, progress_message, "
    "extract(epoch FROM finished_at)::double precision, cancel_requested, run_at <= now()"
)

#: Errors that mean the connection is gone (the server restarted, the backend was killed).
_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # e.g. a connection the server closed while it sat idle
    OSError,
    TimeoutError,
)
_NO_SCHEMA: tuple[type[BaseException], ...] = (
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedFunctionError,
    asyncpg.InvalidSchemaNameError,
)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _names(options: SqlOptions) -> dict[str, str]:
    """Placeholder values for the SQL resources."""
    prefix = options.table_prefix
    space = f"{_quote(options.schema)}." if options.schema else ""
    channel = f"{options.schema}.{prefix}jobs" if options.schema else f"{prefix}jobs"
    if len(channel.encode()) > 63:  # channel names are identifiers: 63 bytes at most
        channel = "conveyor_" + hashlib.sha1(channel.encode()).hexdigest()[:32]
    return {
        "jobs": f"{space}{_quote(prefix + 'jobs')}",
        "meta": f"{space}{_quote(prefix + 'meta')}",
        "reserve": f"{space}{_quote(prefix + 'reserve')}",
        "px": prefix,
        "channel": "'" + channel + "'",
        "channel_name": channel,
        "job_columns": _JOB_COLUMNS,
    }


class PostgresDriver(SqlDriver):
    """A broker in PostgreSQL tables; many worker processes on many machines."""

    schemes = ("postgresql", "postgres")
    dialect = "postgresql"

    def __init__(self, options: SqlOptions) -> None:
        self._cancel_watchers: list[Callable[[str], None]] = []
        super().__init__(options, _names(options))
        self._sa_enqueue = named_parameters(self._q["enqueue"], "dollar")

    def _fresh_state(self) -> None:
        super()._fresh_state()
        self._listener = Listener(
            self.options.url, self._names["channel_name"], self._notified, self._listening
        )

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresDriver:
        """``postgresql://user:pass@host:port/db?schema=&table_prefix=&pool_size=&retention=``.

        Options other than these (e.g. ``clock``) are ignored: the clock is the database's.
        """
        return cls(parse_options(url, schemes=cls.schemes, allow_schema=True))

    # -- connections ------------------------------------------------------------------

    async def _open_pool(self) -> asyncpg.Pool:
        try:
            return await asyncpg.create_pool(
                self.options.url,
                min_size=1,
                max_size=self.options.pool_size,
                timeout=_CONNECT_TIMEOUT,
                max_inactive_connection_lifetime=60.0,
            )
        except (*_LOST, asyncpg.PostgresError) as exc:
            raise BrokerUnavailableError(f"cannot connect to {self.where}: {exc}") from exc

    async def _close_pool(self, pool: asyncpg.Pool) -> None:
        try:
            await asyncio.wait_for(pool.close(), 5.0)
        except _LOST:  # TimeoutError among them
            pool.terminate()

    def _terminate_pool(self, pool: asyncpg.Pool) -> None:
        pool.terminate()

    async def _stop_extras(self) -> None:
        await self._listener.stop()

    def _idle(self) -> None:
        self._listener.start()

    async def _run(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``op`` on a pooled connection; a lost connection is replaced and retried once."""
        pool = self._pool if self._pool is not None else await self._get_pool()
        for attempt in (1, 2):
            try:
                async with pool.acquire() as conn:
                    return await op(conn)
            except _NO_SCHEMA as exc:
                self._schema_ok = False
                raise SchemaError(
                    f"{self.where} has no Conveyor schema ({exc}): run `conveyor migrate`"
                ) from exc
            except _LOST as exc:
                if attempt == 2 or self._pool is None:
                    raise BrokerUnavailableError(f"{self.where}: {exc}") from exc
                await pool.expire_connections()
                await asyncio.sleep(_RETRY_PAUSE)
            except asyncpg.PostgresError as exc:
                raise BrokerError(f"{self.where}: {exc}") from exc
        raise AssertionError("unreachable")

    async def _fetch(self, name: str, *args: Any) -> list[Any]:
        sql = self._q[name]
        rows: list[Any] = await self._run(lambda conn: conn.fetch(sql, *args))
        return rows

    # -- schema -----------------------------------------------------------------------

    async def _read_version(self, conn: Conn | None = None) -> int | None:
        async def read(c: Conn) -> int | None:
            if not await c.fetchval(self._q["has_meta"], self._names["meta"]):
                return None
            value = await c.fetchval(self._q["get_version"])
            return None if value is None else int(value)

        return await (read(conn) if conn is not None else self._run(read))

    async def _migrate(self, upto: int | None) -> int:
        async def run(conn: Conn) -> int:
            target = _Target(self, conn)
            return await _migrations.migrate(target, self._scripts, self.where, upto=upto)

        return await self._run(run)

    # -- wake-ups ---------------------------------------------------------------------

    def _notified(self, payload: str) -> None:
        seconds, _, queue = payload.partition(" ")
        if seconds == "cancel":  # "cancel <job id>": a running job's cancel was asked
            for watcher in list(self._cancel_watchers):
                watcher(queue)
            return
        try:
            due_in = float(seconds)
        except ValueError:
            return
        self._tracker.signal(queue, due_in)

    def _listening(self, ok: bool) -> None:
        self._tracker.trusted = ok
        if ok:
            self._tracker.signal_all()  # whatever was announced while deaf

    # -- the hot path -----------------------------------------------------------------

    @on_home_loop
    async def now(self) -> float:
        return float(await self._run(lambda conn: conn.fetchval(self._q["now"])))

    @on_home_loop
    async def ping(self) -> None:
        await self._run(lambda conn: conn.fetchval("SELECT 1"))

    @staticmethod
    def _enqueue_args(jobs: Sequence[NewJob]) -> tuple[list[Any], ...]:
        # An ETA is the producer's wall-clock time: it becomes a delay here, and the
        # database's clock takes over from there (so eta=now+d and delay=d agree).
        now = time.time()
        ids, tasks, queues, payloads, priorities, delays = [], [], [], [], [], []
        for job in jobs:
            ids.append(job.id)
            tasks.append(job.task)
            queues.append(job.queue)
            payloads.append(job.payload)
            priorities.append(job.priority)
            delays.append(float(job.delay if job.eta is None else job.eta - now))
        return ids, tasks, queues, payloads, priorities, delays

    async def _write_jobs(self, jobs: Sequence[NewJob]) -> None:
        sql = self._q["enqueue"]
        args = self._enqueue_args(jobs)
        tries = 0

        async def insert(conn: Conn) -> None:
            nonlocal tries
            tries += 1
            try:
                await conn.execute(sql, *args)
            except asyncpg.UniqueViolationError:
                if tries == 1:
                    raise
                # the first try committed, then its connection was lost before the answer

        await self._run(insert)

    async def enqueue_in(self, connection: Any, jobs: Sequence[NewJob]) -> None:
        """Enqueue inside the caller's open transaction.

        ``connection``: an asyncpg connection inside ``async with conn.transaction()``,
        or a SQLAlchemy ``AsyncSession``/``AsyncConnection`` on this database (asyncpg
        dialect). The jobs exist when, and only if, the caller commits; workers are
        notified at commit.
        """
        check_priorities(jobs)
        if not jobs:
            return
        await self._check_schema()
        args = self._enqueue_args(jobs)
        try:
            if is_sqlalchemy(connection):
                conn = await sqlalchemy_connection(connection, ("postgresql",))
                params = {f"p{i}": value for i, value in enumerate(args, 1)}
                await sqlalchemy_execute(conn, self._sa_enqueue, params)
                return
            if not isinstance(connection, asyncpg.Connection | asyncpg.pool.PoolConnectionProxy):
                raise ConfigurationError(
                    "the postgresql driver enqueues in a transaction on an asyncpg connection "
                    f"or a SQLAlchemy AsyncSession/AsyncConnection, not {type(connection).__name__}"
                )
            if not connection.is_in_transaction():
                raise ConfigurationError(
                    "dispatch(connection=...) needs an open transaction: "
                    "async with conn.transaction(): ..."
                )
            await connection.fetch(self._q["enqueue"], *args)
        except _NO_SCHEMA as exc:
            raise SchemaError(f"{self.where}: {exc}: run `conveyor migrate`") from exc
        except asyncpg.PostgresError as exc:
            raise BrokerError(f"enqueue in the caller's transaction: {exc}") from exc

    async def _take(
        self, queues: Sequence[str], limit: int, lease: float
    ) -> tuple[list[Reserved], bool, float | None]:
        rows = await self._fetch("reserve", list(queues), limit, lease)
        jobs: list[Reserved] = []
        complete = False
        due_in: float | None = None
        for r in rows:
            if r[0] is None:
                complete, due_in = True, r[7]
            else:
                jobs.append(Reserved(r[0], r[1], r[2], r[3], r[4], r[5], r[6]))
        return jobs, complete, due_in

    @on_home_loop
    async def renew(self, held: Sequence[tuple[str, str]], lease: float) -> RenewResult:
        if not held:
            return RenewResult()
        ids = [job_id for job_id, _ in held]
        tokens = [token for _, token in held]
        rows = await self._fetch("renew", ids, tokens, lease)
        kept = {r[0] for r in rows}
        cancel = frozenset(r[0] for r in rows if r[1])
        return RenewResult(frozenset(i for i in ids if i not in kept), cancel)

    @on_home_loop
    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        first, keep = unique_outcomes(outcomes)
        retention = self.options.retention
        cols: tuple[list[Any], ...] = ([], [], [], [], [], [], [], [])
        ids, tokens, codes, results, seconds, types, messages, tracebacks = cols
        for o in first:
            ids.append(o.id)
            tokens.append(o.token)
            codes.append(outcome_code(o))
            results.append(o.result if o.kind is OutcomeKind.SUCCEEDED else None)
            seconds.append(outcome_seconds(o, retention))
            err = o.error
            types.append(None if err is None else err.type)
            messages.append(None if err is None else err.message)
            tracebacks.append(None if err is None else err.traceback)
        rows = await self._fetch("complete", *cols)
        held = {(r[0], r[1]) for r in rows}
        done = [k and (o.id, o.token) in held for o, k in zip(outcomes, keep, strict=True)]
        finished = [
            o.id for o, ok in zip(outcomes, done, strict=True) if ok and o.kind in FINISHED_KINDS
        ]
        if finished:
            self._finish.wake(finished)
        return done

    # -- inspection and management ----------------------------------------------------

    def watch_cancels(self, callback: Callable[[str], None]) -> None:
        self._cancel_watchers.append(callback)
        if self._home is asyncio.get_running_loop():  # else renewals still report cancels
            self._listener.start()

    def unwatch_cancels(self, callback: Callable[[str], None]) -> None:
        if callback in self._cancel_watchers:
            self._cancel_watchers.remove(callback)

    @on_home_loop
    async def cancel(self, job_id: str) -> bool:
        await self._ready()
        rows = await self._fetch("cancel", job_id, self.options.retention)
        if not rows:
            return False
        if rows[0][0] == "cancelled":
            self._finish.wake([job_id])
        return True

    @on_home_loop
    async def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        sql = self._q["set_progress"]
        await self._run(lambda conn: conn.execute(sql, job_id, fraction, message))

    @on_home_loop
    async def list_jobs(
        self,
        status: JobStatus,
        queue: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[JobInfo]:
        await self._ready()
        if status is JobStatus.DEAD:
            if queue is None:
                rows = await self._fetch("list_dead", limit, offset)
            else:
                rows = await self._fetch("list_dead_in_queue", queue, limit, offset)
        else:
            rows = await self._fetch("list_jobs", *status_filter(status), queue, limit, offset)
        return [job_info(r) for r in rows]

    @on_home_loop
    async def retry_dead(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        await self._ready()
        if job_ids is None:
            rows = await self._fetch("retry_dead_all", queue)
        else:
            rows = await self._fetch("retry_dead_ids", queue, list(dict.fromkeys(job_ids)))
        count = int(rows[0][0])
        if count:
            self._tracker.signal_all()
        return count

    @on_home_loop
    async def purge(self, status: JobStatus, queue: str | None = None) -> int:
        await self._ready()
        sql = self._q["purge"]
        params = (*status_filter(status), queue)
        tag: str = await self._run(lambda conn: conn.execute(sql, *params))
        return int(tag.rsplit(" ", 1)[-1])

    async def _prune(self, batch: int) -> int:
        sql = self._q["prune"]
        tag: str = await self._run(lambda conn: conn.execute(sql, batch))
        return int(tag.rsplit(" ", 1)[-1])


class _Target:
    """The database as :func:`~conveyor.drivers._sql.migrations.migrate` sees it.

    The whole upgrade is one transaction (PostgreSQL's DDL is transactional) under an
    advisory lock, so a failed upgrade leaves nothing half done.
    """

    def __init__(self, driver: PostgresDriver, conn: Conn) -> None:
        self._driver = driver
        self._conn = conn

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        options = self._driver.options
        async with self._conn.transaction():
            key = f"conveyor-migrate:{options.schema or ''}:{options.table_prefix}"
            await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
            if options.schema:
                await self._conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(options.schema)}")
            yield

    async def read_version(self) -> int | None:
        return await self._driver._read_version(self._conn)

    async def apply(self, version: int, script: str) -> None:
        await self._conn.execute(script)
        await self._conn.execute(self._driver._q["set_version"], str(version))
