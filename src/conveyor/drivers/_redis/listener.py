"""One pub/sub connection per driver that wakes idle workers and result waiters.

Scripts publish, once per call, the queues that got work (``<prefix>ev:work``), the
jobs that finished (``<prefix>ev:done``) and active jobs whose cancel was asked
(``<prefix>ev:cancel``), as msgpack lists. The listener turns those
messages into resolved futures. It subscribes to the done channel only once something in
this process waits for a result (every job that finishes anywhere is one message there;
a worker that never waits for results should not read them all). Pub/sub delivers at most
once: a message published while
the connection is down is lost, so whenever the listener (re)subscribes it wakes every
waiter to look again, and waiters never wait without a timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
from redis.asyncio import Redis

log = logging.getLogger("conveyor.redis")

_DECODE = msgspec.msgpack.Decoder(list[str])
_KEEPALIVE = 5.0  # seconds of silence before a PING; three without answer: reconnect


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class Listener:
    """Subscribes lazily, reconnects forever with backoff, and wakes whom a message concerns."""

    def __init__(
        self, client: Redis, work_channel: bytes, done_channel: bytes, cancel_channel: bytes
    ) -> None:
        self._client = client
        self._work_channel = work_channel
        self._done_channel = done_channel
        self._cancel_channel = cancel_channel
        #: called with each job id a cancel notice names
        self.cancel_watchers: list[Callable[[str], None]] = []
        self.subscribed = asyncio.Event()
        self._want_done = False  # subscribe to the done channel too (someone waits)
        self._hearing_done = asyncio.Event()  # the live subscription includes it
        self._pubsub: Any = None  # the live subscription, while there is one
        self._work: dict[asyncio.Future[None], frozenset[str]] = {}
        self._done: dict[str, list[asyncio.Future[None]]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start listening (in the background) if not yet started."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="conveyor-redis-listener")

    async def ready(self, timeout: float, *, done: bool = False) -> bool:
        """Start listening if need be; wait up to ``timeout`` for the subscription.

        ``done``: the caller waits for results, so the done channel must be heard too;
        the first such caller adds it to the live subscription (no gap for the others).
        """
        if done and not self._want_done:
            self._want_done = True
            pubsub = self._pubsub
            if pubsub is not None:
                try:
                    await pubsub.subscribe(self._done_channel)
                except Exception as exc:  # the loop reconnects, subscribing to it then
                    log.debug("redis.listener could not add the done channel: %s", exc)
        self.start()
        event = self._hearing_done if done else self.subscribed
        if event.is_set():
            return True
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # redis-py (8.1) can swallow a cancel that lands while the subscription is set
            # up, and the task then waits on the socket: ask until it is gone. Waiting
            # this way also lets a cancel of our own caller through.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.1)
        self.subscribed.clear()
        self._hearing_done.clear()
        self._wake_all()

    # -- waiters ---------------------------------------------------------------

    @property
    def has_work_waiters(self) -> bool:
        return bool(self._work)

    @property
    def has_done_waiters(self) -> bool:
        return bool(self._done)

    def watch_work(self, queues: Iterable[str], fut: asyncio.Future[None]) -> None:
        self._work[fut] = frozenset(queues)

    def unwatch_work(self, fut: asyncio.Future[None]) -> None:
        self._work.pop(fut, None)

    def watch_done(self, job_id: str, fut: asyncio.Future[None]) -> None:
        self._done.setdefault(job_id, []).append(fut)

    def unwatch_done(self, job_id: str, fut: asyncio.Future[None]) -> None:
        waiters = self._done.get(job_id)
        if waiters is not None and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                del self._done[job_id]

    def work_arrived(self, queues: Iterable[str]) -> None:
        if not self._work:
            return
        names = set(queues)
        for fut, wanted in list(self._work.items()):
            if not wanted.isdisjoint(names):
                _wake(fut)

    def finished(self, job_ids: Iterable[str]) -> None:
        done = self._done
        if not done:
            return
        for job_id in job_ids:
            for fut in done.pop(job_id, ()):
                _wake(fut)

    def _wake_all(self) -> None:
        for fut in self._work:
            _wake(fut)
        for waiters in self._done.values():
            for fut in waiters:
                _wake(fut)

    # -- the connection -----------------------------------------------------------

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            pubsub = self._client.pubsub()
            try:
                channels = [self._work_channel, self._cancel_channel]
                if self._want_done:
                    channels.append(self._done_channel)
                await pubsub.subscribe(*channels)
                self._pubsub = pubsub
                await self._listen(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed.clear()
                self._hearing_done.clear()
                self._wake_all()  # they look for themselves until we are back
                log.warning(
                    "redis.listener lost its connection, retrying in %.2fs: %s", backoff, exc
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                self._pubsub = None
                await asyncio.shield(_close(pubsub))

    async def _listen(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        last_seen = loop.time()
        while True:
            message = await pubsub.get_message(timeout=_KEEPALIVE)
            now = loop.time()
            if message is None:
                if now - last_seen > 3 * _KEEPALIVE:
                    raise ConnectionError("no answer to PING from the Redis server")
                await pubsub.ping()
                continue
            last_seen = now
            kind = message["type"]
            if kind == "message":
                self._dispatch(message["channel"], message["data"])
            elif kind == "subscribe":
                # first subscription, or a reconnection: messages may have been missed
                self.subscribed.set()
                if message["channel"] == self._done_channel:
                    self._hearing_done.set()
                self._wake_all()

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        try:
            names = _DECODE.decode(data)
        except msgspec.DecodeError:
            log.warning("redis.listener ignored a malformed message on %r", channel)
            return
        if channel == self._work_channel:
            self.work_arrived(names)
        elif channel == self._done_channel:
            self.finished(names)
        elif channel == self._cancel_channel:
            for watcher in list(self.cancel_watchers):
                for job_id in names:
                    watcher(job_id)


async def _close(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # the connection is gone already
        pass
