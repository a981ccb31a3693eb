"""Transactional enqueue (SPEC §2) on the SQL drivers, through ``dispatch(connection=...)``.

Each way a user may hold a transaction: the client library's own connection (asyncpg,
asyncmy) and SQLAlchemy's ``AsyncSession`` and ``AsyncConnection``. In every case: a
rollback means the job never existed and never ran; a commit means it runs; until the
commit no worker can see it. The job goes in with a row of the user's own.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from conveyor import Conveyor, task
from conveyor.core import dispatch as core_dispatch
from conveyor.core.dispatch import dispatch_many
from conveyor.exceptions import ConfigurationError
from tests.contract import sql_isolation
from tests.contract.conftest import DRIVERS, MYSQL_FAMILY, DriverSpec, Names, require_service

SQL = [spec for spec in DRIVERS if spec.name in ("postgresql", *MYSQL_FAMILY)]
KINDS = ("native", "sa_session", "sa_connection")

ran: list[int] = []


@task
async def tx_probe(n: int) -> int:
    ran.append(n)
    return n


@dataclass
class Caller:
    """One way of holding a transaction, with a table of the user's own beside the jobs."""

    conn: Any
    insert_order: Callable[[int], Awaitable[None]]


def _plain(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(query=""))


@contextlib.asynccontextmanager
async def postgres_caller(kind: str, url: str, orders: str) -> AsyncIterator[Any]:
    """Yields ``(begin, Caller-factory)``: each ``async with begin() as caller`` is one tx."""
    if kind == "native":
        import asyncpg

        conn = await asyncpg.connect(_plain(url))
        try:

            @contextlib.asynccontextmanager
            async def begin() -> AsyncIterator[Caller]:
                async with conn.transaction():
                    yield Caller(
                        conn, lambda n: conn.execute(f"INSERT INTO {orders} VALUES ($1)", n)
                    )

            yield begin
        finally:
            await conn.close()
        return
    async with _sqlalchemy(
        kind, "postgresql+asyncpg" + _plain(url)[len("postgresql") :], orders
    ) as begin:
        yield begin


@contextlib.asynccontextmanager
async def mysql_caller(kind: str, url: str, orders: str) -> AsyncIterator[Any]:
    if kind == "native":
        conn = await sql_isolation.mysql_connect(url)
        try:

            @contextlib.asynccontextmanager
            async def begin() -> AsyncIterator[Caller]:
                await conn.begin()

                async def insert(n: int) -> None:
                    async with conn.cursor() as cur:
                        await cur.execute(f"INSERT INTO {orders} VALUES (%s)", (n,))

                try:
                    yield Caller(conn, insert)
                except BaseException:
                    await conn.rollback()
                    raise
                await conn.commit()

            yield begin
        finally:
            conn.close()
        return
    async with _sqlalchemy(kind, "mysql+asyncmy" + _plain(url)[len("mysql") :], orders) as begin:
        yield begin


@contextlib.asynccontextmanager
async def _sqlalchemy(kind: str, url: str, orders: str) -> AsyncIterator[Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    engine = create_async_engine(url)
    try:

        @contextlib.asynccontextmanager
        async def begin() -> AsyncIterator[Caller]:
            if kind == "sa_session":
                async with AsyncSession(engine) as session, session.begin():

                    async def insert(n: int) -> None:
                        await session.execute(text(f"INSERT INTO {orders} VALUES (:n)"), {"n": n})

                    yield Caller(session, insert)
            else:
                async with engine.begin() as conn:

                    async def insert(n: int) -> None:
                        await conn.execute(text(f"INSERT INTO {orders} VALUES (:n)"), {"n": n})

                    yield Caller(conn, insert)

        yield begin
    finally:
        await engine.dispose()


@pytest.fixture(params=[(s, k) for s in SQL for k in KINDS], ids=lambda p: f"{p[0].name}-{p[1]}")
def case(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[DriverSpec, str]:
    spec, kind = request.param
    require_service(spec.name, spec.broker_url(tmp_path))
    return spec, kind


@pytest.fixture
async def setup(
    case: tuple[DriverSpec, str], tmp_path: Any, names: Names
) -> AsyncIterator[tuple[Conveyor, Any, Callable[[], Awaitable[list[int]]]]]:
    """The app, a transaction factory, and a way to read the user's orders table."""
    spec, kind = case
    isolate: Any = spec.isolate
    async with isolate(spec.broker_url(tmp_path)) as url:
        app = Conveyor(url, default_queue=names.queue())
        await app.connect()
        driver: Any = app.driver
        previous = core_dispatch._default_app
        core_dispatch.set_default_app(app)
        if spec.name == "postgresql":
            orders = f'"{driver.options.schema}".orders'
            await driver._run(lambda c: c.execute(f"CREATE TABLE {orders} (n integer)"))

            async def read() -> list[int]:
                rows = await driver._run(lambda c: c.fetch(f"SELECT n FROM {orders} ORDER BY n"))
                return [r[0] for r in rows]

            caller = postgres_caller(kind, url, orders)
        else:
            orders = f"`{driver.options.table_prefix}orders`"
            await driver._query(f"CREATE TABLE {orders} (n INT) ENGINE = InnoDB")

            async def read() -> list[int]:
                return [r[0] for r in await driver._query(f"SELECT n FROM {orders} ORDER BY n")]

            caller = mysql_caller(kind, url, orders)
        ran.clear()
        try:
            async with caller as begin:
                yield app, begin, read
        finally:
            core_dispatch.set_default_app(previous)
            await app.close()


class Rollback(Exception):
    pass


async def test_rollback_means_never_existed_and_never_ran(setup: Any) -> None:
    app, begin, read = setup
    handles = []

    async def roll_back() -> None:
        async with begin() as caller:
            await caller.insert_order(1)
            handles.append(await tx_probe(1).dispatch(connection=caller.conn))
            handles.extend(await dispatch_many([tx_probe(2), tx_probe(3)], connection=caller.conn))
            raise Rollback

    with pytest.raises(Rollback):
        await roll_back()
    assert len(handles) == 3
    assert await read() == []
    for h in handles:
        assert await app.job_info(h.id) is None
    await app.worker(burst=True).run()
    assert ran == []


async def test_invisible_until_commit_then_runs(setup: Any, names: Names) -> None:
    app, begin, read = setup
    async with begin() as caller:
        await caller.insert_order(7)
        handle = await tx_probe(7).dispatch(connection=caller.conn)
        (other,) = await dispatch_many([tx_probe(8)], connection=caller.conn)
        # a worker sees nothing yet: not the job, not its status
        assert await app.driver.reserve([names.queue()], 10, 30.0, "w") == []
        assert await app.job_info(handle.id) is None
        # ...and is not held up by the open transaction: other work goes on
        committed = await tx_probe(1).dispatch()
        async with asyncio.timeout(10):
            await app.worker(burst=True).run()
        assert await committed.result(timeout=5) == 1
        assert ran == [1]
    assert await read() == [7]
    await app.worker(burst=True).run()
    assert sorted(ran) == [1, 7, 8]
    assert await handle.result(timeout=5) == 7
    assert await other.result(timeout=5) == 8


NATIVE = [(s, "native") for s in SQL]  # SQLAlchemy begins a transaction on its own


@pytest.mark.parametrize("case", NATIVE, ids=[f"{s.name}-native" for s, _ in NATIVE], indirect=True)
async def test_native_connection_needs_an_open_transaction(
    case: tuple[DriverSpec, str], setup: Any
) -> None:
    _, begin, _ = setup
    async with begin() as caller:
        conn = caller.conn
    # outside any transaction now
    with pytest.raises(ConfigurationError, match="open transaction"):
        await tx_probe(1).dispatch(connection=conn)


async def test_a_connection_of_another_kind_is_refused(setup: Any) -> None:
    with pytest.raises(ConfigurationError):
        await tx_probe(1).dispatch(connection=object())
