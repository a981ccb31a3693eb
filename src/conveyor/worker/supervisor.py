"""Runs N worker processes and keeps them running (``conveyor worker --processes N``).

Each child is a full worker started from a command line (the CLI re-executes
itself), in its own session so that a Ctrl-C in the terminal reaches the
supervisor only, which passes it on. How a child ends decides what happens next:

============================  =============================================================
child exit                    supervisor
============================  =============================================================
:data:`EXIT_RECYCLED`         it ran ``--max-jobs-per-child`` jobs: start a fresh one now
``0``                         burst mode: the child is done; otherwise start a new one
:data:`EXIT_USAGE` (``2``)    a configuration error no restart can fix: stop every child
anything else, or a signal    it died: start a new one after a backoff that doubles per
                              quick death (0.5 s ... 30 s) and resets once a child lives
============================  =============================================================

The first SIGTERM/SIGINT is passed to every child (each one stops gracefully) and the
supervisor waits for them; a second one is passed on too and the supervisor exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Mapping, Sequence

from conveyor.worker.lifecycle import ShutdownSignals, exit_now

log = logging.getLogger("conveyor.supervisor")

#: Environment variable naming the supervisor's pid in each child.
SUPERVISOR_PID_ENV = "CONVEYOR_SUPERVISOR_PID"
#: Exit code of a child that stopped after its ``--max-jobs-per-child`` jobs.
EXIT_RECYCLED = 75  # EX_TEMPFAIL
#: Exit code of a child that cannot start (bad configuration): not restarted.
EXIT_USAGE = 2


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class Supervisor:
    """Starts ``processes`` children running ``command`` and restarts them as they end.

    Args:
        command: the child's argv (``[sys.executable, "-m", "conveyor", "worker", ...]``).
        processes: how many children to keep running.
        env: the children's environment (default: this process's).
        burst: children exit 0 when their work is done; don't restart them then.
        backoff: first restart delay after a crash, doubled per quick crash.
        backoff_cap: longest restart delay.
        stable_after: a child that lived this long resets the backoff.
    """

    def __init__(
        self,
        command: Sequence[str],
        processes: int,
        *,
        env: Mapping[str, str] | None = None,
        burst: bool = False,
        backoff: float = 0.5,
        backoff_cap: float = 30.0,
        stable_after: float = 30.0,
    ) -> None:
        if processes < 1:
            raise ValueError("a supervisor runs at least one process")
        self.command = list(command)
        self.processes = processes
        self.burst = burst
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.stable_after = stable_after
        self._env = dict(os.environ if env is None else env)
        self._env[SUPERVISOR_PID_ENV] = str(os.getpid())
        self._children: dict[int, asyncio.subprocess.Process] = {}
        self._stopping: asyncio.Event | None = None
        self._signal: signal.Signals = signal.SIGTERM
        self._exit_code = 0
        #: children started so far, restarts included
        self.started = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._children.values()]

    async def run(self) -> int:
        """Supervise until stopped (or, in burst mode, until every child is done)."""
        self._stopping = asyncio.Event()
        with ShutdownSignals(self.stop, on_second=self._exit_now, name="supervisor", logger=log):
            log.info("supervisor.started pid=%d processes=%d", os.getpid(), self.processes)
            await asyncio.gather(*(self._keep(slot) for slot in range(self.processes)))
        log.info("supervisor.stopped code=%d started=%d", self._exit_code, self.started)
        return self._exit_code

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Pass ``sig`` to every child and stop restarting them."""
        self._signal = sig
        if self._stopping is not None:
            self._stopping.set()
        self._send(sig)

    def _send(self, sig: signal.Signals) -> None:
        for proc in list(self._children.values()):
            if proc.returncode is None:
                try:
                    proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    def _exit_now(self, sig: signal.Signals) -> None:
        self._send(sig)  # each child's own second signal: it exits at once too
        exit_now(sig)

    @property
    def stopping(self) -> bool:
        return self._stopping is not None and self._stopping.is_set()

    async def _keep(self, slot: int) -> None:
        loop = asyncio.get_running_loop()
        crashes = 0
        while not self.stopping:
            started = loop.time()
            proc = await asyncio.create_subprocess_exec(
                *self.command, env=self._env, start_new_session=True
            )
            self.started += 1
            self._children[slot] = proc
            log.info("supervisor.child_started slot=%d pid=%d", slot, proc.pid)
            if self.stopping:  # a signal arrived while the child was starting
                proc.send_signal(self._signal)
            code = await proc.wait()
            del self._children[slot]
            if self.stopping:
                log.info("supervisor.child_stopped slot=%d pid=%d code=%d", slot, proc.pid, code)
                return
            if code == EXIT_RECYCLED:
                log.info("supervisor.child_recycled slot=%d pid=%d", slot, proc.pid)
                crashes = 0
                continue
            if code == 0 and self.burst:
                log.info("supervisor.child_done slot=%d pid=%d", slot, proc.pid)
                return
            if code == EXIT_USAGE:
                log.error(
                    "supervisor.child_failed slot=%d pid=%d code=%d: configuration error, stopping",
                    slot,
                    proc.pid,
                    code,
                )
                self._exit_code = EXIT_USAGE
                self.stop()
                return
            crashes = 1 if loop.time() - started >= self.stable_after else crashes + 1
            delay = min(self.backoff * 2 ** (crashes - 1), self.backoff_cap)
            how = f"code={code}" if code >= 0 else f"signal={_signal_name(-code)}"
            log.warning(
                "supervisor.child_died slot=%d pid=%d %s; restarting in %.1fs",
                slot,
                proc.pid,
                how,
                delay,
            )
            assert self._stopping is not None
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass
