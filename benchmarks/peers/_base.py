"""What every peer shares: worker processes, readiness, process-tree usage, sync producers.

A peer's worker always runs in worker processes of its own, started by
:class:`ExternalWorker` as ``python -m benchmarks.peers SPEC INDEX`` from the peer's venv
(so its RSS and CPU are the worker's alone, not the producer's). Each worker process
stamps ``ready-<INDEX>`` in the run's directory with ``time.perf_counter()`` once it is
about to consume; the earliest stamp is the run's "worker start". Completions are
observed exactly as for Conveyor: each task stores ``perf_counter()`` into its slot of the
shared completion table (:mod:`benchmarks.timing`), and the harness process watches the
table (it never asks the broker). When every slot is filled, the worker processes'
peak RSS (``VmHWM``, summed over the process tree) and CPU time are read from ``/proc``
and they are killed.

Standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import redisctl
from benchmarks.framework import RunSpec
from benchmarks.sysinfo import descendants
from benchmarks.timing import CompletionTable

ROOT = Path(__file__).resolve().parents[2]
#: give up when no job completed for this long
STALL_SECONDS = 30.0
#: how often the harness looks at the completion table (a few µs when nothing changed)
POLL_SECONDS = 0.002
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- inside a worker process -----------------------------------------------------------


def mark_ready(spec: RunSpec, index: int) -> None:
    """Tell the harness this worker process is about to consume (``perf_counter`` stamp)."""
    path = Path(spec.workdir, f"ready-{index}")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(repr(time.perf_counter()))
    tmp.replace(path)


def run_async(spec: RunSpec, main: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run ``main()`` on the run's event loop (uvloop when the harness uses it)."""
    factory = None
    if spec.loop == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main())


def quiet_logs() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)


# -- in the harness's run process ------------------------------------------------------


def _stat_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its reaped children, from ``/proc/<pid>/stat``."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / _CLOCK_TICKS


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class ExternalWorker:
    """A :class:`~benchmarks.framework.Worker` made of ``spec.workers`` worker processes."""

    external = True

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.workdir = Path(spec.workdir)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.spawned_at = 0.0
        self._peaks: dict[int, int] = {}
        self._cpu: dict[int, float] = {}
        self.truncated = False
        self.cut_at = 0.0  # perf_counter() when the budget ran out

    # -- processes ---------------------------------------------------------------------

    def _spawn(self) -> None:
        spec_path = self.workdir / "worker-spec.json"
        self.spec.dump(spec_path)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.spawned_at = time.perf_counter()
        for index in range(self.spec.workers):
            with (self.workdir / f"worker-{index}.log").open("wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "benchmarks.peers", str(spec_path), str(index)],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )

    def _tree(self) -> list[int]:
        pids = []
        for proc in self.procs:
            if proc.poll() is None:
                pids.append(proc.pid)
                pids.extend(descendants(proc.pid))
        return pids

    def _sample(self) -> None:
        for pid in self._tree():
            self._peaks[pid] = max(self._peaks.get(pid, 0), _hwm_kb(pid))
            self._cpu[pid] = max(self._cpu.get(pid, 0.0), _stat_cpu_seconds(pid))

    def _dead(self) -> str | None:
        for index, proc in enumerate(self.procs):
            if proc.poll() is not None:
                return f"worker process {index} exited with {proc.returncode}: " + self._log_tail(
                    index
                )
        return None

    def _log_tail(self, index: int, lines: int = 8) -> str:
        try:
            text = (self.workdir / f"worker-{index}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def _kill(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def _ready_stamps(self) -> list[float]:
        stamps = []
        for index in range(len(self.procs)):
            path = self.workdir / f"ready-{index}"
            with contextlib.suppress(OSError, ValueError):
                stamps.append(float(path.read_text()))
        return stamps

    async def _wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self._ready_stamps()) < len(self.procs):
            if (why := self._dead()) is not None:
                raise RuntimeError(why)
            if time.monotonic() > deadline:
                raise RuntimeError(f"workers not ready after {timeout:.0f}s: {self._log_tail(0)}")
            await asyncio.sleep(0.01)

    async def _wait_complete(self, n: int) -> str | None:
        """Watch the completion table until all ``n`` slots are stamped; else why not.

        ``spec.budget`` > 0: stop that many seconds after the first worker process is
        ready (``self.truncated``), counting whatever was done by then.
        """
        budget_end: float | None = None
        table = CompletionTable(self.workdir / "completions.bin", n)
        view = table.view
        pos = 0
        progressed = time.monotonic()
        sampled = 0.0
        try:
            while True:
                before = pos
                while pos < n and view[pos]:
                    pos += 1
                if pos >= n:
                    return None
                now = time.monotonic()
                if budget_end is None and self.spec.budget > 0 and self._ready_stamps():
                    budget_end = now + self.spec.budget  # boot time is not the budget's
                if budget_end is not None and now > budget_end:
                    self.truncated = True
                    self.cut_at = time.perf_counter()
                    return None
                if pos != before:
                    progressed = now
                elif now - progressed > STALL_SECONDS:
                    return f"stalled: no job completed for {STALL_SECONDS:.0f}s"
                if now - sampled > 0.25:
                    sampled = now
                    self._sample()
                    if (why := self._dead()) is not None:
                        return why
                await asyncio.sleep(POLL_SECONDS)
        finally:
            table.close()

    def _stats(self, error: str | None) -> dict[str, Any]:
        self._sample()
        stamps = self._ready_stamps()
        out: dict[str, Any] = {
            "external": True,
            "processes": len(self.procs),
            "tree_processes": len(self._peaks),
            "tree_peak_rss_kb": sum(self._peaks.values()),
            "cpu_seconds": sum(self._cpu.values()),
        }
        if stamps:
            out["ready_at"] = min(stamps)
            out["boot_seconds"] = min(stamps) - self.spawned_at
        if error is not None:
            out["error"] = error
        if self.truncated:
            out["truncated"] = True
            out["cut_at"] = self.cut_at
        return out

    # -- the Worker protocol -----------------------------------------------------------

    async def run_until_empty(self) -> dict[str, Any]:
        self._spawn()
        try:
            error = await self._wait_complete(self.spec.count)
            return self._stats(error)
        finally:
            self._kill()

    async def start(self) -> None:
        self._spawn()
        try:
            await self._wait_ready()
        except BaseException:
            self._kill()
            raise

    async def stop(self) -> dict[str, Any]:
        try:
            return self._stats(self._dead())
        finally:
            self._kill()


# -- producers -------------------------------------------------------------------------


class SyncProducer:
    """Base of a sync framework's producer.

    ``send_one_sync``/``send_many_sync`` are the framework's own blocking calls.
    ``send_one`` runs ``send_one_sync`` in a pool of threads as wide as the benchmark's
    concurrent producers (100): the way a threaded application enqueues concurrently.
    The strictly one-at-a-time phase calls ``send_one_sync`` directly.
    """

    bulk = False

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self._pool = ThreadPoolExecutor(max_workers=max(spec.single_concurrency, 1))

    def send_one_sync(self, i: int) -> None:
        raise NotImplementedError

    def send_many_sync(self, indices: range) -> None:
        for i in indices:
            self.send_one_sync(i)

    async def open(self) -> None:
        pass

    async def send_one(self, i: int) -> None:
        await asyncio.get_running_loop().run_in_executor(self._pool, self.send_one_sync, i)

    async def send_many(self, indices: range) -> None:
        if self.bulk:
            self.send_many_sync(indices)
        else:
            await fill(self, indices)

    async def close(self) -> None:
        self._pool.shutdown(wait=True)


async def fill(producer: Any, indices: range, width: int = 100) -> None:
    """Enqueue ``indices`` with ``send_one`` from ``width`` concurrent clients (no bulk API)."""
    todo = iter(indices)

    async def client() -> None:
        for i in todo:
            await producer.send_one(i)

    await asyncio.gather(*(client() for _ in range(min(width, len(indices)))))


# -- the framework ---------------------------------------------------------------------


class PeerFramework:
    """Base of a peer :class:`~benchmarks.framework.Framework`: Redis only, external workers."""

    name = "peer"
    module = ""  # the framework's import name, for ``unavailable``
    dists: tuple[str, ...] = ()  # distributions whose versions are reported

    def targets(self) -> Sequence[str]:
        return ("redis",)

    def unavailable(self, target: str) -> str | None:
        if target != "redis":
            return f"{self.name} is measured on Redis only"
        if importlib.util.find_spec(self.module) is None:
            return f"{self.module} is not installed in {sys.prefix}"
        return redisctl.ping()

    def versions(self) -> dict[str, str]:
        out = {f"{self.name} python": ".".join(map(str, sys.version_info[:3]))}
        for dist in self.dists:
            try:
                out[dist] = metadata.version(dist)
            except metadata.PackageNotFoundError:
                pass
        return out

    def url(self, *, scratch: bool) -> str:
        """The benchmark database; scratch jobs (never run) go to the one next to it."""
        return redisctl.scratch_url() if scratch else redisctl.url()

    def worker(self, spec: RunSpec, producer: Any) -> ExternalWorker:
        return ExternalWorker(spec)


def describe(spec: RunSpec) -> str:
    return json.dumps(asdict(spec))
