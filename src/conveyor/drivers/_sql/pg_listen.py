"""PostgreSQL ``LISTEN`` on a connection of its own, reconnecting with backoff.

Every write that makes work due sends ``NOTIFY <channel>, '<seconds until due> <queue>'``
(at commit). The listener hands each message to ``on_message`` and reports whether
it is listening through ``on_state``: while it is not, the driver cannot trust that
silence means "no work" and falls back to polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger("conveyor.drivers")

_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 5.0


class Listener:
    """Keeps one ``LISTEN`` connection open for as long as it runs."""

    def __init__(
        self,
        dsn: str,
        channel: str,
        on_message: Callable[[str], None],
        on_state: Callable[[bool], None],
        *,
        connect_timeout: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._channel = channel
        self._on_message = on_message
        self._on_state = on_state
        self._connect_timeout = connect_timeout
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection[Any] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="conveyor-listen")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _notified(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self._on_message(payload)

    async def _run(self) -> None:
        backoff = _BACKOFF_FIRST
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
                self._conn = conn
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(self._channel, self._notified)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.debug("listen failed, retrying in %.1fs: %s", backoff, exc)
                self._on_state(False)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _BACKOFF_MAX)
                continue
            backoff = _BACKOFF_FIRST
            self._on_state(True)
            try:
                await lost.wait()
            finally:
                self._on_state(False)
            log.warning("conveyor.listen connection lost; reconnecting")
