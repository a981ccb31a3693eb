"""``rediss://`` end to end, against a private ``redis-server`` that speaks TLS only, with a
certificate from a throwaway CA made for the test (valid for ``localhost`` only).

Verification is on by default: without the CA, or by a name the certificate does not
carry, connecting fails at once with one error that says so, and is not retried.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor import Conveyor
from conveyor.drivers.redis import RedisDriver
from conveyor.exceptions import BrokerUnavailableError
from tests.contract.redis_server import RedisServer, make_certificates

pytestmark = pytest.mark.xdist_group("redis-tls")  # one server for the module


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    directory = tmp_path_factory.mktemp("redis-tls")
    instance = RedisServer(directory, tls=make_certificates(directory, ["localhost"]))
    try:
        yield instance
    finally:
        instance.kill()


@pytest.fixture
def ca(server: RedisServer) -> Path:
    assert server.tls is not None
    return server.tls.ca


async def _connect_error(url: str) -> tuple[BrokerUnavailableError, float]:
    driver = RedisDriver.from_url(url)
    started = time.monotonic()
    try:
        with pytest.raises(BrokerUnavailableError) as caught:
            await driver.connect()
    finally:
        await driver.close()
    return caught.value, time.monotonic() - started


async def test_the_server_takes_tls_only(server: RedisServer) -> None:
    error, _ = await _connect_error(f"redis://localhost:{server.port}/0?retries=0")
    assert "unreachable" in str(error)


async def test_certificates_are_verified_by_default(server: RedisServer) -> None:
    """No CA given: the system's CAs do not know the test's CA, so connecting fails."""
    error, took = await _connect_error(f"rediss://localhost:{server.port}/0")
    assert str(error).startswith(f"Redis at localhost:{server.port}/0: ")
    assert "TLS certificate verification failed" in str(error)
    assert "self-signed certificate in certificate chain" in str(error)
    assert "ssl_ca_certs" in str(error)  # says how to fix it
    assert took < 2, "a certificate that fails verification must not be retried"
    assert "CERTIFICATE_VERIFY_FAILED" in str(error.__cause__)  # redis-py's error kept


async def test_a_round_trip_through_conveyor_with_the_ca(server: RedisServer, ca: Path) -> None:
    app = Conveyor(
        f"rediss://localhost:{server.port}/0?ssl_ca_certs={ca}&prefix=tls",
        default_queue="tls",
        concurrency=4,
    )

    @app.task
    async def add(a: int, b: int) -> int:
        return a + b

    async with app:
        handles = [await add(n, 1).dispatch() for n in range(20)]
        stats = await app.worker(burst=True).run()
        assert stats.succeeded == 20
        assert [await h.result(timeout=5) for h in handles] == [n + 1 for n in range(20)]
    with server.client() as client:
        assert client.keys("{tls}:*")  # the jobs went through this server


async def test_a_host_name_the_certificate_does_not_carry_is_refused(
    server: RedisServer, ca: Path
) -> None:
    error, took = await _connect_error(f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={ca}")
    assert "TLS certificate verification failed" in str(error)
    assert "certificate is not valid for '127.0.0.1'" in str(error)
    assert "host name" in str(error)
    assert took < 2


async def test_host_name_checking_can_be_turned_off(server: RedisServer, ca: Path) -> None:
    """``ssl_check_hostname=false`` still checks the chain, not the name."""
    url = f"rediss://127.0.0.1:{server.port}/0?ssl_ca_certs={ca}&ssl_check_hostname=false"
    driver = RedisDriver.from_url(url)
    try:
        await driver.connect()
        await driver.ping()
    finally:
        await driver.close()
    error, _ = await _connect_error(f"rediss://127.0.0.1:{server.port}/0?ssl_check_hostname=false")
    assert "self-signed certificate in certificate chain" in str(error)


async def test_verification_can_be_turned_off(server: RedisServer) -> None:
    driver = RedisDriver.from_url(f"rediss://127.0.0.1:{server.port}/0?ssl_cert_reqs=none")
    try:
        await driver.connect()
        await driver.ping()
    finally:
        await driver.close()


async def test_a_server_that_asks_for_client_certificates(tmp_path: Path) -> None:
    """``ssl_certfile`` and ``ssl_keyfile`` send the client's own certificate."""
    tls = make_certificates(tmp_path, ["localhost"])
    server = RedisServer(tmp_path, "--tls-auth-clients", "yes", tls=tls)
    try:
        base = f"rediss://localhost:{server.port}/0?ssl_ca_certs={tls.ca}"
        driver = RedisDriver.from_url(
            f"{base}&ssl_certfile={tls.client_cert}&ssl_keyfile={tls.client_key}"
        )
        try:
            await driver.connect()
            await driver.ping()
        finally:
            await driver.close()
        error, _ = await _connect_error(f"{base}&retries=0")  # no client certificate
        assert "unreachable" in str(error)
    finally:
        server.kill()


async def test_rediss_to_a_plain_server_says_it_may_not_speak_tls(tmp_path: Path) -> None:
    """A plain server takes the TLS hello for a command that never ends: the handshake
    times out. The error says what is likely wrong instead of only "unreachable"."""
    plain = RedisServer(tmp_path)
    try:
        url = f"rediss://localhost:{plain.port}/0?retries=0&socket_connect_timeout=0.5"
        error, _ = await _connect_error(url)
    finally:
        plain.kill()
    assert "does not speak TLS, connect with redis://" in str(error)
