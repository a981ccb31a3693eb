"""Pruning on the MySQL family (MariaDB and MySQL itself), on the real servers: it never
waits for rows other transactions hold, and it never holds up closing the driver.

Regression tests for the background prune that hung full parallel suites: a batch's
``DELETE ... WHERE seq IN (...)`` could scan the whole table and wait on rows other
transactions held, and a close that cancelled a batch mid-statement had the cancellation
turned into a "lost connection" and the batch retried, so the pruner never stopped and
``close()`` waited for it forever. Each test works in a table prefix of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from conveyor.drivers import create_driver
from tests.contract import sql_isolation
from tests.contract.conftest import DRIVERS, DriverSpec, require_service
from tests.contract.helpers import LEASE, done, enqueue, new_job

#: MariaDB on the shared server and MySQL's releases on private ones, whatever their ids.
MYSQL_FAMILY = [spec for spec in DRIVERS if spec.isolate is sql_isolation.mysql_prefix]

#: Far below the servers' lock wait timeouts (50 s for rows, a year for tables).
PROMPTLY = 10.0


@pytest.fixture(params=MYSQL_FAMILY, ids=[spec.name for spec in MYSQL_FAMILY])
async def mysql_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    spec: DriverSpec = request.param
    url = spec.broker_url(tmp_path)
    require_service(spec.name, url)
    async with sql_isolation.mysql_prefix(url) as private:
        yield private


async def _other_session(url: str) -> Any:
    """A connection of another application: autocommit off, ``READ COMMITTED``."""
    return await sql_isolation.mysql_connect(
        url, init_command="SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"
    )


async def _expired(driver: Any, queue: str, count: int) -> list[str]:
    """``count`` jobs that succeeded with a result that has already expired."""
    await enqueue(driver, queue, count)
    jobs = await driver.reserve([queue], count, LEASE, "w")
    assert len(jobs) == count
    await driver.complete([done(j, result=b"r", result_ttl=0.001) for j in jobs])
    await asyncio.sleep(0.05)
    return [j.id for j in jobs]


async def test_a_prune_never_waits_for_rows_other_transactions_hold(mysql_url: str) -> None:
    """Another application holds an expired row (``FOR UPDATE``) and has a job enqueued in
    its open transaction: a prune deletes every other expired row at once, and reserving
    goes on meanwhile. (A batch deleted by ``seq IN (...)`` over most of the table is a
    full scan, which waited 50 s for the held rows, then retried.)"""
    driver: Any = create_driver(mysql_url)
    other = await _other_session(mysql_url)
    try:
        ids = await _expired(driver, "q", 100)  # enough for both servers to scan
        jobs = driver._names["jobs"]
        async with other.cursor() as cur:
            await other.begin()
            await cur.execute(f"SELECT seq FROM {jobs} WHERE id = %s FOR UPDATE", (ids[0],))
            await cur.fetchall()
            await driver.enqueue_in(other, [new_job("q")])  # uncommitted: a row lock too
        async with asyncio.timeout(PROMPTLY):
            assert await driver.prune() == 99  # all but the held one
            await enqueue(driver, "ready")
            assert len(await driver.reserve(["ready"], 1, LEASE, "w")) == 1
        await other.commit()  # the held row is free again: the next prune takes it
        assert await driver.prune() == 1
        assert await driver.get_job(ids[0]) is None
    finally:
        other.close()
        await driver.close()


async def test_close_never_waits_for_a_prune_stuck_on_the_server(mysql_url: str) -> None:
    """A background prune waits on the server (another session holds the table with
    ``LOCK TABLES``, a lock it waits for without a timeout of its own): closing the
    driver ends it at once, and nothing prunes, retries or reconnects afterwards."""
    driver: Any = create_driver(mysql_url)
    other = await _other_session(mysql_url)
    jobs = driver._names["jobs"]
    try:
        driver._pruner.interval = 0.02
        await enqueue(driver, "q")
        await driver.reserve(["q"], 1, LEASE, "w")  # a worker's reserve starts the pruner
        pruner = driver._pruner._task
        assert pruner is not None
        async with other.cursor() as cur:
            await cur.execute(f"LOCK TABLES {jobs} WRITE")
            table = jobs.strip("`")
            async with asyncio.timeout(PROMPTLY):  # until the prune is waiting for it
                while True:
                    await cur.execute(
                        "SELECT COUNT(*) FROM information_schema.processlist "
                        "WHERE info LIKE %s AND state LIKE %s",
                        (f"%{table}%", "%metadata lock%"),
                    )
                    if (await cur.fetchall())[0][0]:
                        break
                    await asyncio.sleep(0.02)
        started = time.monotonic()
        async with asyncio.timeout(PROMPTLY):
            await driver.close()
        assert time.monotonic() - started < PROMPTLY / 2
        assert pruner.done()
        assert driver._pool is None  # nothing reconnected behind the close
    finally:
        async with other.cursor() as cur:
            await cur.execute("UNLOCK TABLES")
        other.close()
        await driver.close()
