"""Fixtures for the whole suite: the private MySQL and Valkey servers
(``tests/contract/mysql_server``, ``tests/contract/valkey_server``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract import mysql_server, valkey_server


@pytest.fixture(scope="session", autouse=True)
def _stop_private_mysql_server() -> Iterator[None]:
    """The private MySQL servers start on first use and stop when the session ends."""
    yield
    mysql_server.stop_shared()


@pytest.fixture(scope="session", autouse=True)
def _stop_private_valkey_server() -> Iterator[None]:
    """The private Valkey server starts on first use and stops when the session ends."""
    yield
    valkey_server.stop_shared()


@pytest.fixture(scope="session")
def mysql8_url() -> str:
    """The URL of a MySQL 8 server (a private one, started here); skips without one."""
    return mysql_server.shared_url("mysql8")


@pytest.fixture(scope="session")
def mysql9_url() -> str:
    """The URL of a MySQL 9+ server (a private one, started here); skips without one."""
    return mysql_server.shared_url("mysql9")
