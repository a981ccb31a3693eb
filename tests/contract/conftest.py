"""Fixtures of the driver contract suite: every test runs once per driver.

Adding a driver means adding one :class:`DriverSpec` to :data:`DRIVERS`. A driver that
needs a server names the environment variable holding its URL (with a default for a
local server); its tests skip when the server can't be reached, and fail instead when
``CONVEYOR_REQUIRE_SERVICES=1`` (CI), so a missing service is never mistaken for a pass.

Isolation is by a random queue prefix per test (:class:`Names`), never by flushing the
broker: tests must only ever look at, retry or purge their own queues.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conveyor.drivers import Driver, create_driver
from tests.contract import mysql_server, redis_isolation, sql_isolation, valkey_server

REQUIRE_SERVICES_ENV = "CONVEYOR_REQUIRE_SERVICES"

#: Ports assumed when a service URL names none.
DEFAULT_PORTS = {
    "redis": 6379,
    "rediss": 6380,
    "postgresql": 5432,
    "postgres": 5432,
    "mysql": 3306,
    "amqp": 5672,
    "amqps": 5671,
    "nats": 4222,
    "http": 80,
    "https": 443,
}


@dataclass(frozen=True)
class DriverSpec:
    """How the suite reaches one driver.

    Attributes:
        name: the test id, e.g. ``"redis"``.
        url: builds the broker URL for one test from its ``tmp_path``.
        url_env: for server-backed drivers, the variable that overrides the URL.
        shared: whether two driver instances built from the same URL see the same jobs
            (false for ``memory://``, whose "second worker" is then the same instance).
        isolate: for a shared server, turns the URL into one private to a test (its own
            schema or table prefix, migrated) for the duration of the block.
    """

    name: str
    url: Callable[[Path], str]
    url_env: str | None = None
    shared: bool = True
    isolate: Callable[[str], AbstractAsyncContextManager[str]] | None = None

    def broker_url(self, tmp_path: Path) -> str:
        if self.url_env and os.environ.get(self.url_env):
            return os.environ[self.url_env]
        return self.url(tmp_path)

    @property
    def needs_server(self) -> bool:
        return self.url_env is not None


DRIVERS: tuple[DriverSpec, ...] = (
    DriverSpec("memory", lambda tmp: "memory://", shared=False),
    DriverSpec("sqlite", lambda tmp: f"sqlite:///{tmp / 'conveyor.db'}"),
    DriverSpec(
        "postgresql",
        lambda tmp: sql_isolation.POSTGRES_URL,
        url_env="CONVEYOR_TEST_POSTGRES_URL",
        isolate=sql_isolation.postgres_schema,
    ),
    DriverSpec(
        "mysql",
        lambda tmp: sql_isolation.MYSQL_URL,
        url_env="CONVEYOR_TEST_MYSQL_URL",
        isolate=sql_isolation.mysql_prefix,
    ),
    *(  # MySQL itself (Oracle's: mysql8, mysql9), beside MariaDB above: see mysql_server
        DriverSpec(
            release.id,
            lambda tmp, release_id=release.id: mysql_server.shared_url(release_id),
            url_env=release.url_env,
            isolate=sql_isolation.mysql_prefix,
        )
        for release in mysql_server.RELEASES.values()
    ),
    DriverSpec(
        "redis",
        lambda tmp: redis_isolation.REDIS_URL,
        url_env="CONVEYOR_TEST_REDIS_URL",
        isolate=redis_isolation.private_prefix,
    ),
    DriverSpec(  # redis:// on Valkey, beside Redis above: see valkey_server
        "valkey",
        lambda tmp: valkey_server.shared_url(),
        url_env=valkey_server.URL_ENV,
        isolate=redis_isolation.private_prefix,
    ),
)

#: The ids of the MySQL-family servers: MariaDB (``mysql``), then MySQL's releases.
MYSQL_FAMILY = ("mysql", *mysql_server.RELEASES)


def require_service(name: str, url: str, *, timeout: float = 1.0) -> None:
    """Skip the test unless ``url``'s server accepts TCP connections.

    With ``CONVEYOR_REQUIRE_SERVICES=1`` an unreachable server fails the test instead.
    """
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    if port is None:
        pytest.fail(f"{name}: no port in {url!r} and no default for {parts.scheme!r}")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        message = f"{name} server not reachable at {host}:{port} ({exc})"
        if os.environ.get(REQUIRE_SERVICES_ENV) == "1":
            pytest.fail(f"{message}; {REQUIRE_SERVICES_ENV}=1 requires it", pytrace=False)
        pytest.skip(message)


@pytest.fixture(params=DRIVERS, ids=[spec.name for spec in DRIVERS])
def driver_spec(request: pytest.FixtureRequest) -> DriverSpec:
    spec: DriverSpec = request.param
    return spec


@pytest.fixture
async def broker_url(driver_spec: DriverSpec, tmp_path: Path) -> AsyncIterator[str]:
    url = driver_spec.broker_url(tmp_path)
    if driver_spec.needs_server:
        require_service(driver_spec.name, url)
    if driver_spec.isolate is None:
        yield url
        return
    async with driver_spec.isolate(url) as private:
        yield private


@pytest.fixture
async def driver(broker_url: str) -> AsyncIterator[Driver]:
    """A connected driver, closed after the test."""
    instance = create_driver(broker_url)
    await instance.connect()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def other_driver(
    driver_spec: DriverSpec, broker_url: str, driver: Driver
) -> AsyncIterator[Driver]:
    """A second connection to the same broker, as another worker process would have.

    For a driver whose instances don't share jobs (``memory://``) it is ``driver`` itself.
    """
    if not driver_spec.shared:
        yield driver
        return
    instance = create_driver(broker_url)
    await instance.connect()
    try:
        yield instance
    finally:
        await instance.close()


@dataclass(frozen=True)
class Names:
    """Queue names private to one test."""

    prefix: str

    def queue(self, name: str = "default") -> str:
        return f"{self.prefix}.{name}"


@pytest.fixture
def names() -> Names:
    return Names(f"t{secrets.token_hex(4)}")


@pytest.fixture
def queue(names: Names) -> str:
    """The test's default queue."""
    return names.queue()
