"""The connections of one event loop: a pool with retries, and calls to the scripts.

redis-py connections belong to the loop that opened them, so the driver keeps one
``Link`` for the loop it connected on and makes a short-lived one for a call from
any other loop (sync code running its own loop).

A lost connection is retried with backoff; a server certificate that fails verification
is not (it will fail the same way every time): it is one clear error at once.

The scripts' calls (the worker's hot path) skip redis-py's per-command machinery: a few
connections are kept out of the pool for them, and a call writes its packed command and
reads the reply on one of those (~21 against ~53 µs of CPU per call with the pool's
``execute_command``, measured here). Any trouble on that path (a lost connection, a
cancelled caller) throws that connection away and, unless the caller is gone, runs the
call again the ordinary way, with its retries.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import FullJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from conveyor.drivers._redis.options import RedisOptions
from conveyor.drivers._redis.scripts import Script, scripts
from conveyor.exceptions import BrokerError, BrokerUnavailableError

T = TypeVar("T")


def certificate_error(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The TLS verification failure behind ``error`` (redis-py wraps it), if it is one."""
    seen: BaseException | None = error
    for _ in range(8):  # redis-py's ConnectionError, raised while handling the SSL error
        if seen is None:
            return None
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class _Retry(Retry):
    """redis-py's retry with backoff, except for a certificate that failed verification."""

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def retryable(error: Exception) -> bool:
            if certificate_error(error) is not None:
                return False
            return is_retryable is None or is_retryable(error)

        return await super().call_with_retry(do, fail, retryable, with_failure_count)


class Link:
    """The connections of one event loop: a pool with retries, and the scripts' calls."""

    def __init__(self, options: RedisOptions, where: str) -> None:
        self.loop = asyncio.get_running_loop()
        self.where = where
        self._tls = options.url.lower().startswith("rediss:")
        retry = _Retry(FullJitterBackoff(cap=2.0, base=0.05), options.retries)
        self.pool = BlockingConnectionPool.from_url(
            options.url,
            max_connections=options.max_connections,
            timeout=None,
            retry=retry,
            **options.defaults,
        )
        self.client = Redis(connection_pool=self.pool)
        self._head = (1, options.queues_key, options.base)
        self._scripts = scripts()
        # connections kept for eval(); at most half the pool, so command() always has some
        self._spare: list[AbstractConnection] = []
        self._spare_max = max(1, options.max_connections // 2)
        self._spare_out = 0  # taken from the pool for eval() and not given back

    async def eval(self, name: str, *args: Any) -> Any:
        script: Script = self._scripts[name]
        conn = self._spare.pop() if self._spare else None
        if conn is None and self._spare_out < self._spare_max:
            self._spare_out += 1
            try:
                conn = await self.pool.get_connection()  # type: ignore[no-untyped-call]
            except RedisError as exc:  # could not connect, with the retries: say why
                self._spare_out -= 1
                raise self.error(exc) from exc
            except BaseException:
                self._spare_out -= 1
                raise
        if conn is not None:
            fine = False
            try:
                reply = await self._fast(conn, script, args)
                fine = True
                return reply
            except NoScriptError:
                fine = True  # the reply was read: the connection is fine
            except RedisError as exc:
                fine = not isinstance(exc, RedisConnectionError | RedisTimeoutError)
                if fine:
                    raise self.error(exc) from exc
            except OSError:
                pass
            finally:
                if fine:
                    self._spare.append(conn)
                else:  # lost, or a reply may still be on its way: never reuse it
                    self._spare_out -= 1
                    await self._drop(conn)
        return await self._slow(script, args)

    async def _fast(self, conn: AbstractConnection, script: Script, args: tuple[Any, ...]) -> Any:
        await conn.send_packed_command(
            conn.pack_command("EVALSHA", script.sha, *self._head, *args), check_health=False
        )
        return await conn.read_response()

    async def _drop(self, conn: AbstractConnection) -> None:
        try:
            await conn.disconnect(nowait=True)
        finally:
            await self.pool.release(conn)

    async def _slow(self, script: Script, args: tuple[Any, ...]) -> Any:
        try:
            try:
                return await self.client.execute_command(  # type: ignore[no-untyped-call]
                    "EVALSHA", script.sha, *self._head, *args
                )
            except NoScriptError:  # a restarted or flushed server: send the source
                return await self.client.execute_command(  # type: ignore[no-untyped-call]
                    "EVAL", script.source, *self._head, *args
                )
        except RedisError as exc:
            raise self.error(exc) from exc

    async def command(self, *args: Any) -> Any:
        try:
            return await self.client.execute_command(*args)  # type: ignore[no-untyped-call]
        except RedisError as exc:
            raise self.error(exc) from exc

    def error(self, exc: RedisError) -> BrokerError:
        bad = certificate_error(exc)
        if bad is not None:
            reason = str(bad.verify_message or bad.reason or bad).rstrip(".")
            hint = (
                "connect by a host name the certificate carries"
                if "mismatch" in reason
                else "pass the CA that signed it: ?ssl_ca_certs=/path/to/ca.pem"
            )
            return BrokerUnavailableError(
                f"Redis at {self.where}: TLS certificate verification failed: {reason}; {hint}"
            )
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            hint = ""
            if self._tls and "Timeout connecting" in str(exc):
                # a plain server reads the TLS hello as a command that never ends
                hint = "; if that port does not speak TLS, connect with redis:// instead"
            return BrokerUnavailableError(f"Redis at {self.where} is unreachable: {exc}{hint}")
        return BrokerError(f"Redis at {self.where}: {exc}")

    async def close(self) -> None:
        spare, self._spare = self._spare, []
        self._spare_out = 0
        for conn in spare:
            await self.pool.release(conn)
        try:
            await self.client.aclose()
        finally:
            await self.pool.disconnect()
