"""Per-test isolation on the shared SQL servers: a schema (PostgreSQL) or a table prefix
(MySQL/MariaDB) of its own, migrated before the test and dropped after it.

Nothing else on the servers is touched: tests never drop a database or another
test's tables. Client libraries are imported lazily, so a machine without them can
still collect the rest of the suite.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
MYSQL_URL = "mysql://root@127.0.0.1:3306/test"


def with_option(url: str, key: str, value: str) -> str:
    """``url`` with the query option ``key`` set to ``value``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != key] + [(key, value)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def private_name() -> str:
    return f"t{secrets.token_hex(5)}"


async def migrated(url: str) -> None:
    from conveyor.drivers import create_driver

    driver: Any = create_driver(url)
    try:
        await driver.migrate()
    finally:
        await driver.close()


@asynccontextmanager
async def postgres_schema(url: str, *, migrate: bool = True) -> AsyncIterator[str]:
    """A schema of the test's own (``?schema=t...``), dropped with everything in it."""
    schema = private_name()
    private = with_option(url, "schema", schema)
    try:
        if migrate:
            await migrated(private)
        yield private
    finally:
        await drop_postgres_schema(url, schema)


async def drop_postgres_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(urlunsplit(urlsplit(url)._replace(query="")))
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


@asynccontextmanager
async def mysql_prefix(url: str, *, migrate: bool = True) -> AsyncIterator[str]:
    """Tables and routines of the test's own (``?table_prefix=t..._``), dropped after."""
    prefix = private_name() + "_"
    private = with_option(url, "table_prefix", prefix)
    try:
        if migrate:
            await migrated(private)
        yield private
    finally:
        await drop_mysql_prefix(url, prefix)


async def mysql_connect(url: str, *, database: bool = True, **options: Any) -> Any:
    """An asyncmy connection (autocommit) to the server of ``url``; to its database too
    unless ``database`` is false. ``options`` go to ``asyncmy.connect``."""
    import asyncmy

    parts = urlsplit(url)
    if database:
        options.setdefault("db", parts.path.lstrip("/"))
    return await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
        **options,
    )


async def drop_mysql_prefix(url: str, prefix: str) -> None:
    conn = await mysql_connect(url)
    try:
        async with conn.cursor() as cur:
            like = prefix.replace("_", "\\_") + "%"
            await cur.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_name LIKE %s",
                (like,),
            )
            for (name,) in await cur.fetchall():
                await cur.execute(f"DROP TABLE IF EXISTS `{name}`")
            await cur.execute(
                "SELECT routine_name FROM information_schema.routines "
                "WHERE routine_schema = DATABASE() AND routine_name LIKE %s",
                (like,),
            )
            for (name,) in await cur.fetchall():
                await cur.execute(f"DROP PROCEDURE IF EXISTS `{name}`")
    finally:
        conn.close()
