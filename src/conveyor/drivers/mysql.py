"""``mysql://``: jobs in a MySQL 8+ / MariaDB 10.6+ table, next to the application's data.

How it works:

* asyncmy (chosen over aiomysql by measurement, see ``docs/mysql.md``), with a pool of
  connections (``?pool_size=``, default 10) in ``READ COMMITTED``, which ``SKIP LOCKED``
  needs to skip rows without waiting on the gaps next to them.
* Reserve is one ``CALL`` of a stored procedure: it puts jobs with expired leases back,
  then takes each queue's due jobs with ``FOR UPDATE SKIP LOCKED`` in one ``UPDATE``
  (MySQL has no ``UPDATE ... RETURNING``: the procedure reads the rows it took back by
  their fresh lease), so workers never wait on each other or take the same job.
* Acks are one ``CALL`` per batch (outcomes as one JSON document, ``JSON_TABLE``
  inside); a batch of new jobs is one multi-row ``INSERT``.
* Every due time is judged by the server's ``UTC_TIMESTAMP(6)``.
* The server is identified on connect (``SELECT VERSION()``); one too old for the schema
  is refused with one line (:mod:`conveyor.drivers._sql.mysql_server`). The SQL is the
  same on MySQL and MariaDB.
* Wake-ups: MySQL has no notifications. Work added through this driver wakes its own
  waiters at once; other processes' work is found by bounded adaptive polling (the
  interval doubles while the queues stay empty; due times the database reports are
  waited for exactly; see :mod:`conveyor.drivers._sql.idle`).
* Transactional enqueue on the caller's asyncmy connection or SQLAlchemy
  ``AsyncSession``/``AsyncConnection`` (``mysql+asyncmy``).
* The schema is created and upgraded by ``conveyor migrate`` only.

URL: ``mysql://user:password@host:3306/db?table_prefix=conveyor_&pool_size=10``, or
``?unix_socket=/run/mysqld/mysqld.sock``. See ``docs/mysql.md``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncmy
from asyncmy import errors as my_errors

from conveyor.core.job import JobInfo, JobStatus
from conveyor.drivers._sql import migrations as _migrations
from conveyor.drivers._sql import resources
from conveyor.drivers._sql.callers import (
    is_sqlalchemy,
    named_parameters,
    sqlalchemy_connection,
    sqlalchemy_execute,
)
from conveyor.drivers._sql.engine import SqlDriver
from conveyor.drivers._sql.loops import on_home_loop
from conveyor.drivers._sql.mysql_client import (
    ATTEMPTS,
    NO_SCHEMA_CODES,
    RETRY_CODES,
    code_of,
    connect_args,
    drain,
    is_lost,
    marks,
)
from conveyor.drivers._sql.mysql_server import ServerVersion, parse_version, unsupported_message
from conveyor.drivers._sql.options import SqlOptions, parse_options
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
Conn = Any  # an asyncmy connection

_RETRY_PAUSE = 0.05
_INSERT_CHUNK = 5000  # rows per INSERT where rows can't be sent in bulk (65535 parameters)

_JOB_COLUMNS = (
    "id, task, queue, state, attempts, priority, "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', run_at) / 1000000, "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', enqueued_at) / 1000000, payload, result, "
    "error_type, error_message, traceback, progress, progress_message, "
    "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', finished_at) / 1000000, cancel_requested, "
    "run_at <= UTC_TIMESTAMP(6)"
)


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"


def _names(options: SqlOptions) -> dict[str, str]:
    prefix = options.table_prefix
    return {
        "jobs": _quote(prefix + "jobs"),
        "meta": _quote(prefix + "meta"),
        "reserve": _quote(prefix + "reserve"),
        "complete": _quote(prefix + "complete"),
        "px": prefix,
        "job_columns": _JOB_COLUMNS,
    }


class MySQLDriver(SqlDriver):
    """A broker in MySQL/MariaDB tables; many worker processes on many machines."""

    schemes = ("mysql", "mariadb")
    dialect = "mysql"

    def __init__(self, options: SqlOptions) -> None:
        super().__init__(options, _names(options))
        self._connect_args = connect_args(options)
        #: The server of the last pool opened (``SELECT VERSION()``), once connected.
        self.server: ServerVersion | None = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MySQLDriver:
        """``mysql://user:pass@host:port/db?table_prefix=&pool_size=&retention=``.

        Options other than these (e.g. ``clock``) are ignored: the clock is the server's.
        """
        return cls(parse_options(url, schemes=cls.schemes, allow_schema=False))

    # -- connections ------------------------------------------------------------------

    async def _open_pool(self) -> Any:
        try:
            pool = await asyncmy.create_pool(
                minsize=1, maxsize=self.options.pool_size, **self._connect_args
            )
        except (OSError, TimeoutError, my_errors.MySQLError) as exc:
            raise BrokerUnavailableError(f"cannot connect to {self.where}: {exc}") from exc
        except RuntimeError as exc:  # asyncmy's word for a missing optional package
            if "cryptography" not in str(exc):
                raise
            raise ConfigurationError(
                f"{self.where}: the server asks for caching_sha2_password or sha256_password "
                "(MySQL 8's default), which needs cryptography: pip install 'conveyor[mysql]'"
            ) from exc
        try:
            self.server = await self._identify(pool)
        except (OSError, TimeoutError, my_errors.MySQLError) as exc:
            pool.terminate()
            raise BrokerUnavailableError(f"cannot connect to {self.where}: {exc}") from exc
        refused = unsupported_message(self.server, self.where)
        if refused is not None:
            pool.terminate()
            raise SchemaError(refused)  # waiting can't fix it: workers stop with this line
        return pool

    @staticmethod
    async def _identify(pool: Any) -> ServerVersion:
        conn = await pool.acquire()
        try:
            async with conn.cursor() as cur:
                await cur.execute("SELECT VERSION()")
                ((text,),) = await cur.fetchall()
        finally:
            pool.release(conn)
        return parse_version(str(text))

    async def _close_pool(self, pool: Any) -> None:
        pool.close()
        try:
            await asyncio.wait_for(pool.wait_closed(), 5.0)
        except (TimeoutError, OSError, my_errors.MySQLError):
            pool.terminate()

    def _terminate_pool(self, pool: Any) -> None:
        pool.terminate()

    async def _run(self, op: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``op`` on a pooled connection; a lost connection is replaced and retried once."""
        pool = self._pool if self._pool is not None else await self._get_pool()
        for attempt in range(1, ATTEMPTS + 1):
            try:
                conn = await pool.acquire()
            except (OSError, TimeoutError, my_errors.MySQLError) as exc:
                if attempt >= 2:
                    raise BrokerUnavailableError(f"{self.where}: {exc}") from exc
                await asyncio.sleep(_RETRY_PAUSE)
                continue
            try:
                return await op(conn)
            except (OSError, TimeoutError, my_errors.MySQLError) as exc:
                if _cancelling() and _raised_by_cancellation(exc):
                    # the task is being cancelled and the cancellation surfaced as an
                    # error on its way out (asyncmy closes a connection whose read was
                    # cancelled): never a retry, the cancellation goes on
                    raise asyncio.CancelledError from exc
                code = code_of(exc)
                if code in RETRY_CODES and attempt < ATTEMPTS:
                    continue  # deadlock victim: nothing was done, go again
                if is_lost(exc):
                    conn.close()  # never back into the pool
                    if attempt >= 2:
                        raise BrokerUnavailableError(f"{self.where}: {exc}") from exc
                    # its idle siblings likely went the same way (a restart, a mass kill)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(pool.clear(), 1.0)
                    await asyncio.sleep(_RETRY_PAUSE)
                    continue
                if code in NO_SCHEMA_CODES:
                    self._schema_ok = False
                    raise SchemaError(
                        f"{self.where} has no Conveyor schema ({exc}): run `conveyor migrate`"
                    ) from exc
                raise BrokerError(f"{self.where}: {exc}") from exc
            finally:
                pool.release(conn)
        raise AssertionError("unreachable")

    async def _fetch(self, name: str, *args: Any) -> list[Any]:
        return await self._query(self._q[name], args or None)

    async def _query(self, sql: str, args: Any = None) -> list[Any]:
        async def run(conn: Conn) -> list[Any]:
            async with conn.cursor() as cur:
                await cur.execute(sql, args)
                return await drain(cur)

        return await self._run(run)

    async def _write(self, sql: str, args: Any = None) -> int:
        """Run one statement; return its affected row count."""

        async def run(conn: Conn) -> int:
            async with conn.cursor() as cur:
                count: int = await cur.execute(sql, args)
                return count

        return await self._run(run)

    # -- schema -----------------------------------------------------------------------

    async def _read_version(self, conn: Conn | None = None) -> int | None:
        async def read(c: Conn) -> int | None:
            async with c.cursor() as cur:
                await cur.execute(self._q["has_meta"], (self.options.table_prefix + "meta",))
                ((count,),) = await cur.fetchall()
                if not count:
                    return None
                await cur.execute(self._q["get_version"])
                rows = await cur.fetchall()
            return int(rows[0][0]) if rows else None

        return await (read(conn) if conn is not None else self._run(read))

    async def _migrate(self, upto: int | None) -> int:
        async def run(conn: Conn) -> int:
            target = _Target(self, conn)
            return await _migrations.migrate(target, self._scripts, self.where, upto=upto)

        return await self._run(run)

    # -- the hot path -----------------------------------------------------------------

    @on_home_loop
    async def now(self) -> float:
        rows = await self._query(self._q["now"])
        return float(rows[0][0])

    @on_home_loop
    async def ping(self) -> None:
        await self._query("SELECT 1")

    @staticmethod
    def _rows(jobs: Sequence[NewJob]) -> list[tuple[Any, ...]]:
        """The parameters of ``enqueue_row`` for each job."""
        now = time.time()
        rows = []
        for job in jobs:
            # an ETA is the producer's wall-clock time: it becomes a delay here, and the
            # server's clock takes over from there (so eta=now+d and delay=d agree)
            delay = job.delay if job.eta is None else job.eta - now
            micros = max(round(delay * 1_000_000), 0)
            state = "scheduled" if micros > 0 else "queued"
            rows.append((job.id, job.task, job.queue, job.payload, job.priority, micros, state))
        return rows

    def _insert(self, rows: Sequence[tuple[Any, ...]]) -> tuple[str, list[Any]]:
        """One multi-row ``INSERT`` for ``rows``, and its flat parameters."""
        row = self._q["enqueue_row"]
        sql = self._q["enqueue_head"] + "\n" + ",\n".join([row] * len(rows))
        return sql, [value for r in rows for value in r]

    async def _insert_on(self, conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` on ``conn`` inside its current transaction."""
        async with conn.cursor() as cur:
            # MariaDB, with prepared statements on (ours; a caller's may not have them):
            # every row bound in binary in one command
            if getattr(conn, "_bulk_supported", False) and getattr(conn, "_stmt_cache_size", 0):
                await cur.executemany(self._q["enqueue_head"] + " " + self._q["enqueue_row"], rows)
                return
            for start in range(0, len(rows), _INSERT_CHUNK):
                sql, params = self._insert(rows[start : start + _INSERT_CHUNK])
                await cur.execute(sql, params)

    async def _write_jobs(self, jobs: Sequence[NewJob]) -> None:
        rows = self._rows(jobs)
        tries = 0

        async def insert(conn: Conn) -> None:
            nonlocal tries
            tries += 1
            try:
                await _transaction(conn, lambda: self._insert_on(conn, rows))
            except my_errors.IntegrityError:
                if tries == 1:
                    raise
                # the first try committed, then its connection was lost before the answer

        await self._run(insert)

    async def enqueue_in(self, connection: Any, jobs: Sequence[NewJob]) -> None:
        """Enqueue inside the caller's open transaction.

        ``connection``: an asyncmy connection with a transaction begun (``await
        conn.begin()``), or a SQLAlchemy ``AsyncSession``/``AsyncConnection`` on this
        database (``mysql+asyncmy``). The jobs exist when, and only if, the caller
        commits. Workers in other processes find them by polling.
        """
        check_priorities(jobs)
        if not jobs:
            return
        await self._check_schema()
        rows = self._rows(jobs)
        try:
            if is_sqlalchemy(connection):
                conn = await sqlalchemy_connection(connection, ("mysql", "mariadb"))
                sql, params = self._insert(rows)
                named = named_parameters(sql, "format")
                values = {f"p{i}": value for i, value in enumerate(params, 1)}
                await sqlalchemy_execute(conn, named, values)
                return
            if not isinstance(connection, asyncmy.Connection):
                raise ConfigurationError(
                    "the mysql driver enqueues in a transaction on an asyncmy connection "
                    f"or a SQLAlchemy AsyncSession/AsyncConnection, not {type(connection).__name__}"
                )
            if connection.get_autocommit() and not connection.get_transaction_status():
                raise ConfigurationError(
                    "dispatch(connection=...) needs an open transaction: await conn.begin() first"
                )
            await self._insert_on(connection, rows)
        except my_errors.MySQLError as exc:
            if code_of(exc) in NO_SCHEMA_CODES:
                raise SchemaError(f"{self.where}: {exc}: run `conveyor migrate`") from exc
            raise BrokerError(f"enqueue in the caller's transaction: {exc}") from exc

    async def _take(
        self, queues: Sequence[str], limit: int, lease: float
    ) -> tuple[list[Reserved], bool, float | None]:
        token = secrets.token_hex(8)
        rows = await self._query(
            self._q["reserve"], (json.dumps(list(queues)), limit, lease, token)
        )
        position = {name: i for i, name in enumerate(queues)}
        taken: list[tuple[Any, ...]] = []
        complete = False
        due_in: float | None = None
        for r in rows:
            if r[0] is None:
                complete, due_in = True, (None if r[9] is None else float(r[9]))
            else:
                taken.append(r)
        taken.sort(key=lambda r: (position[r[1]], r[5], r[7], r[8]))
        jobs = [Reserved(r[0], r[1], bytes(r[2]), r[3], r[4], r[5], r[6]) for r in taken]
        return jobs, complete, due_in

    @on_home_loop
    async def renew(self, held: Sequence[tuple[str, str]], lease: float) -> RenewResult:
        if not held:
            return RenewResult()
        ids = [job_id for job_id, _ in held]
        tokens = [token for _, token in held]
        lists = f" {marks(ids)} AND token IN {marks(tokens)}"

        async def run(conn: Conn) -> list[Any]:
            async with conn.cursor() as cur:
                await cur.execute(self._q["renew"] + lists, (lease, *ids, *tokens))
                await cur.execute(self._q["held"] + lists, (*ids, *tokens))
                return list(await cur.fetchall())

        rows = await self._run(run)
        kept = {r[0] for r in rows}
        cancel = frozenset(r[0] for r in rows if r[1])
        return RenewResult(frozenset(i for i in ids if i not in kept), cancel)

    @on_home_loop
    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        if not outcomes:
            return []
        first, keep = unique_outcomes(outcomes)
        retention = self.options.retention
        document = []
        for i, o in enumerate(first):
            err = o.error
            result = o.result if o.kind is OutcomeKind.SUCCEEDED else None
            document.append(
                [
                    i,
                    o.id,
                    o.token,
                    outcome_code(o),
                    outcome_seconds(o, retention),
                    None if result is None else base64.b64encode(result).decode("ascii"),
                    None if err is None else err.type,
                    None if err is None else err.message,
                    None if err is None else err.traceback,
                ]
            )
        rows = await self._query(self._q["complete"], (json.dumps(document),))
        held = {int(i) for i in rows[0][0].split(",") if i}
        answers = iter(i in held for i in range(len(first)))
        done = [next(answers) if k else False for k in keep]
        finished = [
            o.id for o, ok in zip(outcomes, done, strict=True) if ok and o.kind in FINISHED_KINDS
        ]
        if finished:
            self._finish.wake(finished)
        return done

    # -- inspection and management ----------------------------------------------------

    @on_home_loop
    async def cancel(self, job_id: str) -> bool:
        await self._ready()
        if await self._write(self._q["cancel_waiting"], (self.options.retention, job_id)):
            self._finish.wake([job_id])
            return True
        return bool(await self._write(self._q["cancel_active"], (job_id,)))

    @on_home_loop
    async def set_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        await self._write(self._q["set_progress"], (fraction, message, job_id))

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
                rows = await self._query(self._q["list_dead"], (limit, offset))
            else:
                rows = await self._query(self._q["list_dead_in_queue"], (queue, limit, offset))
        else:
            state, alt, due = status_filter(status)
            params = (state, alt, due, queue, queue, limit, offset)
            rows = await self._query(self._q["list_jobs"], params)
        return [job_info(r) for r in rows]

    @on_home_loop
    async def retry_dead(self, job_ids: Sequence[str] | None, queue: str | None = None) -> int:
        await self._ready()
        if job_ids is None:
            count = await self._write(self._q["retry_dead_all"], (queue, queue))
        else:
            ids = list(dict.fromkeys(job_ids))
            if not ids:
                return 0
            sql = self._q["retry_dead_ids"] + " " + marks(ids)
            count = await self._write(sql, (queue, queue, *ids))
        if count:
            self._tracker.signal_all()
        return count

    @on_home_loop
    async def purge(self, status: JobStatus, queue: str | None = None) -> int:
        await self._ready()
        state, alt, due = status_filter(status)
        return await self._write(self._q["purge"], (state, alt, due, queue, queue))

    async def _prune(self, batch: int) -> int:
        """One batch: pick expired rows nobody holds, then delete exactly those.

        The pick locks its rows (``FOR UPDATE SKIP LOCKED``: it never waits); each is then
        deleted by its primary key, so the batch touches no row it does not already
        hold and never waits for another transaction. (One ``DELETE ... WHERE seq IN
        (...)`` does not promise that: when the list is a large part of the table, the
        servers scan the whole table, locking, and waiting for, every row on the way,
        such as jobs being reserved or enqueued in a caller's open transaction.) On
        MariaDB the deletes go as one bulk command; on MySQL, one statement per row.
        """
        q = self._q

        async def run(conn: Conn) -> int:
            async def pick_and_delete() -> int:
                async with conn.cursor() as cur:
                    await cur.execute(q["prune_pick"], (batch,))
                    seqs = [(r[0],) for r in await cur.fetchall()]
                    if not seqs:
                        return 0
                    await cur.executemany(q["prune_delete"], seqs)
                    return int(cur.rowcount)

            return await _transaction(conn, pick_and_delete)

        return await self._run(run)


def _cancelling() -> bool:
    """Whether the running task is being cancelled."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _raised_by_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while a cancellation was being handled.

    ``cancelling()`` alone is not enough: a task whose cancellation was swallowed once
    (a race inside ``asyncio.wait_for`` on 3.11, for one) keeps a count above zero, and
    every later lost connection would then end it instead of being retried.
    """
    seen = exc.__context__ or exc.__cause__
    for _ in range(8):
        if seen is None or isinstance(seen, asyncio.CancelledError):
            return seen is not None
        seen = seen.__context__ or seen.__cause__
    return False


async def _transaction(conn: Conn, body: Callable[[], Awaitable[T]]) -> T:
    """``body`` in a transaction on ``conn``: committed if it returns, rolled back if not.

    A cancelled ``body`` sends nothing more: the connection is closed (asyncmy has
    already closed one whose read was cancelled) and the server rolls the transaction
    back when it sees the connection go, so a cancellation is neither delayed by a
    rollback nor turned into the error of a rollback on a closed connection.
    """
    await conn.begin()
    try:
        result = await body()
    except Exception:
        try:
            await conn.rollback()
        except (OSError, TimeoutError, my_errors.MySQLError):
            conn.close()  # gone: the server rolls back on its own; the first error counts
        raise
    except BaseException:
        conn.close()
        raise
    await conn.commit()
    return result


class _Target:
    """The database as :func:`~conveyor.drivers._sql.migrations.migrate` sees it.

    MySQL commits DDL as it goes, so each script is written to be re-runnable
    (``IF NOT EXISTS``, ``DROP PROCEDURE IF EXISTS``) and the version is recorded after
    each one; ``GET_LOCK`` keeps two migrators apart.
    """

    def __init__(self, driver: MySQLDriver, conn: Conn) -> None:
        self._driver = driver
        self._conn = conn

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        name = f"conveyor-migrate:{self._driver._connect_args['db']}:"
        name = (name + self._driver.options.table_prefix)[:64]
        q = self._driver._q
        async with self._conn.cursor() as cur:
            await cur.execute(q["lock"], (name, 60))
            ((got,),) = await cur.fetchall()
            if got != 1:
                raise SchemaError(f"{self._driver.where}: another migration holds the lock")
            await cur.execute("SET SESSION sql_notes = 0")  # "... does not exist" is expected
            try:
                yield
            finally:
                await cur.execute("SET SESSION sql_notes = 1")
                await cur.execute(q["unlock"], (name,))
                await cur.fetchall()

    async def read_version(self) -> int | None:
        return await self._driver._read_version(self._conn)

    async def apply(self, version: int, script: str) -> None:
        async with self._conn.cursor() as cur:
            for statement in resources.split_script(script):
                await cur.execute(statement)
                await drain(cur)
            await cur.execute(self._driver._q["set_version"], (str(version), str(version)))
