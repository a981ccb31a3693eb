"""The end of a worker's life: a graceful stop on the first signal, an exit at once on the second.

First SIGTERM or SIGINT: the worker stops reserving, lets in-flight jobs finish
within ``shutdown_grace`` and releases the jobs it prefetched but never started
(no attempt used). A second signal ends the process at once: jobs it still holds
come back to the queue when their leases expire, with the attempt counted, so
nothing is lost either way.

A worker started by a :mod:`~conveyor.worker.supervisor` also watches its parent
and stops gracefully if the supervisor disappears (it was killed with -9), so no
worker is left running unsupervised.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from types import TracebackType

log = logging.getLogger("conveyor.worker")

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


def exit_now(sig: signal.Signals) -> None:
    """Leave the process at once with ``128 + signum``, as a shell reports a signal death."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(128 + int(sig))


class ShutdownSignals:
    """Routes stop signals to ``stop`` once, then to ``on_second``.

    Use as a context manager inside the running loop::

        with ShutdownSignals(worker.stop):
            await worker.run()

    Args:
        stop: called on the first signal; must only *start* the shutdown.
        on_second: called on any further signal; by default exits the process at once.
        signals: the signals to handle.
        name: prefix of the log events (``worker.stopping``, ``supervisor.stopping``).
    """

    def __init__(
        self,
        stop: Callable[[signal.Signals], None],
        *,
        on_second: Callable[[signal.Signals], None] = exit_now,
        signals: Sequence[signal.Signals] = STOP_SIGNALS,
        name: str = "worker",
        logger: logging.Logger = log,
    ) -> None:
        self._stop = stop
        self._on_second = on_second
        self._signals = tuple(signals)
        self._name = name
        self._log = logger
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the first signal received, if any
        self.received: signal.Signals | None = None

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.add_signal_handler(sig, self._handle, sig)
        self._loop = loop

    def remove(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None or loop.is_closed():
            return
        for sig in self._signals:
            loop.remove_signal_handler(sig)

    def __enter__(self) -> ShutdownSignals:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.remove()

    def _handle(self, sig: signal.Signals) -> None:
        if self.received is None:
            self.received = sig
            self._log.info(
                "%s.stopping signal=%s: finishing in-flight jobs; send it again to exit at once",
                self._name,
                sig.name,
            )
            self._stop(sig)
            return
        self._log.warning(
            "%s.exit signal=%s: second signal, exiting now (held jobs return when their "
            "leases expire)",
            self._name,
            sig.name,
        )
        self._on_second(sig)


class ParentWatch:
    """Stops a supervised worker once its supervisor (``parent_pid``) is gone."""

    def __init__(self, parent_pid: int, stop: Callable[[], None], interval: float = 1.0) -> None:
        self._parent = parent_pid
        self._stop = stop
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def __enter__(self) -> ParentWatch:
        self._task = asyncio.create_task(self._run(), name="conveyor-parent-watch")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while os.getppid() == self._parent:
            await asyncio.sleep(self._interval)
        log.warning("worker.orphaned supervisor=%d is gone; stopping gracefully", self._parent)
        self._stop()
