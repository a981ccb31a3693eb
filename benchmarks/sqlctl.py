"""Where the side-by-side runs on SQL find their servers, and each run's own database.

The servers (``CONVEYOR_BENCH_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``;
``CONVEYOR_BENCH_MYSQL_URL``, default ``mysql://root@127.0.0.1:3306/test``) are shared with
other people's tests, so a run never touches their databases: the harness creates two
databases of the run's own (``cvbench_<hex>`` for the jobs a worker runs and
``cvbench_<hex>_s`` for the scratch jobs that only time enqueueing), and drops both when
the run is over (:mod:`benchmarks.compare.stores`). A framework finds them through
:func:`url` with ``RunSpec.database``.

A fresh database has no planner statistics, and a table filled with 20,000 jobs a moment
ago would be planned as if it were empty until autovacuum's next pass (up to a minute
later): Procrastinate's fetch, for one, then takes ~14 ms instead of ~0.6 ms. A
long-lived queue table always has statistics, so in every SQL framework's run the
database is analyzed between the bulk enqueue and the worker's start (``before_work``;
not timed).

Standard library only (see :mod:`benchmarks`): peers' venvs import it too.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

#: target -> (environment variable, default server URL)
SERVERS = {
    "postgresql": ("CONVEYOR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": ("CONVEYOR_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
#: every database the benchmark creates starts with this (and only those are ever dropped)
PREFIX = "cvbench_"
SCRATCH_SUFFIX = "_s"


def server_url(target: str) -> str:
    env, default = SERVERS[target]
    return os.environ.get(env, default)


def url(target: str, database: str, *, scratch: bool = False) -> str:
    """The server's URL with ``database`` (or its scratch twin) as the database."""
    name = database + (SCRATCH_SUFFIX if scratch else "")
    if not name.startswith(PREFIX):
        raise ValueError(f"not a benchmark database: {name!r}")
    return urlunsplit(urlsplit(server_url(target))._replace(path="/" + name, query=""))


def ping(target: str) -> str | None:
    """``None`` when the server accepts a TCP connection, else why not."""
    parts = urlsplit(server_url(target))
    port = parts.port or (5432 if target == "postgresql" else 3306)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2.0):
            return None
    except OSError as exc:
        return f"no {target} server at {parts.hostname}:{port} ({exc})"


async def analyze(database_url: str) -> None:
    """``ANALYZE`` every table of a PostgreSQL or MySQL/MariaDB database (Conveyor's venv:
    asyncpg, asyncmy)."""
    parts = urlsplit(database_url)
    if parts.scheme.startswith("postgres"):
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        return
    import asyncmy

    conn = await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        db=parts.path.lstrip("/"),
        autocommit=True,
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute("SHOW TABLES")
            for (table,) in await cur.fetchall():
                await cur.execute(f"ANALYZE TABLE `{table}`")
                await cur.fetchall()
    finally:
        conn.close()
