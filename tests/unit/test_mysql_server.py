"""The MySQL driver tells MySQL from MariaDB on connect and refuses servers too old for its
schema, with one line (no server needed: ``VERSION()`` texts and a stand-in pool)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor.drivers import mysql as mysql_driver
from conveyor.drivers._sql import resources
from conveyor.drivers._sql.mysql_server import (
    MARIADB,
    MYSQL,
    parse_version,
    unsupported_message,
)
from conveyor.exceptions import ConfigurationError, SchemaError


@pytest.mark.parametrize(
    ("text", "flavour", "version"),
    [
        ("10.11.6-MariaDB-0+deb12u1", MARIADB, (10, 11, 6)),
        ("10.6.18-MariaDB-log", MARIADB, (10, 6, 18)),
        ("5.5.5-10.11.6-MariaDB", MARIADB, (10, 11, 6)),  # as a proxy's handshake has it
        ("11.4.2-MariaDB-ubu2404", MARIADB, (11, 4, 2)),
        ("10.5.23-MariaDB", MARIADB, (10, 5, 23)),
        ("8.0.36", MYSQL, (8, 0, 36)),
        ("8.0.36-0ubuntu0.22.04.1", MYSQL, (8, 0, 36)),
        ("8.4.3", MYSQL, (8, 4, 3)),
        ("9.7.4-2", MYSQL, (9, 7, 4)),
        ("8.0.35-27", MYSQL, (8, 0, 35)),  # Percona Server
        ("5.7.44-log", MYSQL, (5, 7, 44)),
        ("8.0", MYSQL, (8, 0, 0)),
    ],
)
def test_version_text_gives_flavour_and_version(
    text: str, flavour: str, version: tuple[int, int, int]
) -> None:
    server = parse_version(text)
    assert (server.flavour, server.version, server.text) == (flavour, version, text)
    assert server.is_mariadb is (flavour == MARIADB)


@pytest.mark.parametrize(
    ("text", "supported"),
    [
        ("10.6.0-MariaDB", True),
        ("10.11.6-MariaDB-0+deb12u1", True),
        ("11.4.2-MariaDB", True),
        ("10.5.23-MariaDB", False),  # no SKIP LOCKED, no JSON_TABLE
        ("10.4.34-MariaDB", False),
        ("8.0.4", True),
        ("8.0.11", True),  # the first 8.0 GA
        ("8.4.3", True),
        ("9.7.4-2", True),
        ("8.0.3", False),  # a milestone release before JSON_TABLE
        ("5.7.44-log", False),
        ("nonsense", False),
    ],
)
def test_which_servers_are_refused(text: str, supported: bool) -> None:
    server = parse_version(text)
    assert server.supported is supported
    message = unsupported_message(server, "mysql://db:3306/app")
    if supported:
        assert message is None
        return
    assert message is not None
    assert "\n" not in message
    assert message.startswith(f"mysql://db:3306/app runs {server} ({text!r})")
    assert message.endswith("needs MySQL 8.0+ or MariaDB 10.6+")


class _Pool:
    terminated = 0

    def terminate(self) -> None:
        _Pool.terminated += 1


async def test_an_old_server_is_refused_on_connect_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def create_pool(**_: Any) -> _Pool:
        await asyncio.sleep(0.01)
        return _Pool()

    async def identify(pool: Any) -> Any:
        return parse_version("5.7.44-log")

    monkeypatch.setattr(mysql_driver.asyncmy, "create_pool", create_pool)
    monkeypatch.setattr(mysql_driver.MySQLDriver, "_identify", staticmethod(identify))
    driver = mysql_driver.MySQLDriver.from_url("mysql://root@db.invalid:3306/app")
    _Pool.terminated = 0
    # two callers at once: both get the refusal, neither waits forever on the other
    results = await asyncio.wait_for(
        asyncio.gather(driver.connect(), driver.ping(), return_exceptions=True), 5
    )
    assert all(isinstance(r, SchemaError) for r in results), results
    assert str(results[0]) == (
        "mysql://db.invalid:3306/app (conveyor_*) runs MySQL 5.7.44 ('5.7.44-log'), which lacks "
        "SKIP LOCKED or JSON_TABLE: the mysql:// driver needs MySQL 8.0+ or MariaDB 10.6+"
    )
    assert _Pool.terminated == 1
    assert driver.server is not None
    assert driver.server.version == (5, 7, 44)


def test_the_sql_uses_nothing_only_one_flavour_has() -> None:
    """MariaDB-only syntax that MySQL 8 rejects, and MySQL-only syntax that MariaDB rejects,
    stay out of the MySQL driver's SQL (its behaviour on both is tested on real servers).

    The newest script's procedures replace older ones, so older scripts are held only to
    what still runs from them: their tables."""
    scripts = resources.raw_migrations("mysql")
    current = [scripts[-1][1], *resources.raw_queries("mysql").values()]
    forbidden_anywhere = [
        "RETURNING",  # MariaDB 10.5+ INSERT/DELETE only; MySQL has none
        "ADD COLUMN IF NOT EXISTS",  # MariaDB only
        "CREATE INDEX IF NOT EXISTS",  # MariaDB only
        "CREATE OR REPLACE",  # MariaDB only for procedures
        "NEXTVAL",  # sequences: MariaDB only
        " AS new",  # MySQL 8.0.19+ row alias for ON DUPLICATE KEY UPDATE: not MariaDB
    ]
    forbidden_now = [
        "VALUES(`",  # ON DUPLICATE KEY UPDATE ... VALUES(): deprecated in MySQL 8.0.20+
        "= GREATEST(@@",  # SET x = a DECIMAL: error 1232 on MySQL
    ]
    for sql in [script for _, script in scripts]:
        for needle in forbidden_anywhere:
            assert needle.upper() not in _code(sql), needle
    for sql in current:
        for needle in forbidden_now:
            assert needle.upper() not in _code(sql), needle


def _code(sql: str) -> str:
    """``sql`` without its ``--`` comments, upper-cased."""
    return "\n".join(ln.split("--", 1)[0] for ln in sql.splitlines()).upper()


async def test_a_missing_cryptography_package_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def create_pool(**_: Any) -> Any:
        raise RuntimeError(
            "'cryptography' package is required for sha256_password or "
            "caching_sha2_password auth methods"
        )

    monkeypatch.setattr(mysql_driver.asyncmy, "create_pool", create_pool)
    driver = mysql_driver.MySQLDriver.from_url("mysql://app:pw@db.invalid:3306/app")
    with pytest.raises(ConfigurationError, match=r"caching_sha2_password .*conveyor\[mysql\]"):
        await driver.connect()
