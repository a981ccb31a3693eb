"""Giving every side-by-side run an empty broker, and taking it away afterwards.

- Redis: the benchmark's own database (and the scratch one next to it) is flushed before
  and after every run (:mod:`benchmarks.redisctl`); nothing else on the server is touched.
- PostgreSQL and MariaDB: every run gets two databases of its own, created empty before
  it (``cvbench_<hex>`` and its scratch twin ``cvbench_<hex>_s``, :mod:`benchmarks.sqlctl`)
  and dropped after it, so no table, index statistics or dead tuples carry over from one
  framework's run to the next. Each framework creates its schema in them itself, before
  anything is timed (``Framework.prepare``). Databases left by a killed harness are
  dropped when the next comparison starts; only ``cvbench_*`` names are ever dropped.

The SQL side runs in the harness (Conveyor's venv) with asyncpg and asyncmy, the
clients of Conveyor's ``postgresql``/``mysql`` extras.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import urlsplit

from benchmarks import redisctl, sqlctl


class RedisStore:
    title = "Redis"

    def ping(self, target: str) -> str | None:
        return redisctl.ping()

    def facts(self, target: str) -> dict[str, str]:
        return redisctl.server_facts()

    def fresh(self, target: str) -> str:
        redisctl.flush()
        return ""

    def clean(self, target: str, database: str) -> None:
        redisctl.flush()

    def sweep_leftovers(self, targets: set[str]) -> None:
        pass


async def _pg(sql: list[str]) -> list[Any]:
    import asyncpg

    server = sqlctl.server_url("postgresql")
    conn = await asyncpg.connect(server.split("?", 1)[0])
    try:
        out = []
        for statement in sql:
            out.append(await conn.fetch(statement))
        return out
    finally:
        await conn.close()


async def _my(sql: list[str]) -> list[Any]:
    import asyncmy

    parts = urlsplit(sqlctl.server_url("mysql"))
    conn = await asyncmy.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
        autocommit=True,
    )
    try:
        out = []
        async with conn.cursor() as cur:
            for statement in sql:
                await cur.execute(statement)
                out.append(await cur.fetchall())
        return out
    finally:
        conn.close()


def _names(database: str) -> list[str]:
    if not (database.startswith(sqlctl.PREFIX) and database.replace("_", "").isalnum()):
        raise ValueError(f"not a benchmark database: {database!r}")
    return [database, database + sqlctl.SCRATCH_SUFFIX]


class SqlStore:
    title = "PostgreSQL and MariaDB"

    def ping(self, target: str) -> str | None:
        return sqlctl.ping(target)

    def _run(self, target: str, sql: list[str]) -> list[Any]:
        return asyncio.run(_pg(sql) if target == "postgresql" else _my(sql))

    def facts(self, target: str) -> dict[str, str]:
        try:
            (rows,) = self._run(target, ["SELECT version()"])
        except Exception as exc:  # the report says why
            return {"error": str(exc)}
        return {"version": str(rows[0][0])}

    def fresh(self, target: str) -> str:
        database = f"{sqlctl.PREFIX}{secrets.token_hex(5)}"
        if target == "postgresql":
            self._run(target, [f'CREATE DATABASE "{name}"' for name in _names(database)])
        else:
            self._run(target, [f"CREATE DATABASE `{name}`" for name in _names(database)])
        return database

    def clean(self, target: str, database: str) -> None:
        if target == "postgresql":  # WITH (FORCE): a killed worker's session may linger
            self._run(
                target, [f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in _names(database)]
            )
        else:
            self._run(target, [f"DROP DATABASE IF EXISTS `{n}`" for n in _names(database)])

    def sweep_leftovers(self, targets: set[str]) -> None:
        like = sqlctl.PREFIX.replace("_", "\\_") + "%"
        for target in targets:
            if target == "postgresql":
                (rows,) = self._run(
                    target, [f"SELECT datname FROM pg_database WHERE datname LIKE '{like}'"]
                )
            else:
                (rows,) = self._run(target, [f"SHOW DATABASES LIKE '{like}'"])
            for name in sorted({row[0].removesuffix(sqlctl.SCRATCH_SUFFIX) for row in rows}):
                print(f"dropping {target} database {name} left by an earlier run", flush=True)
                self.clean(target, name)


Store = RedisStore | SqlStore
