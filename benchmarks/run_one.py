"""One measured run in a fresh process: ``python -m benchmarks.run_one SPEC.json``.

The phases, each timed with ``time.perf_counter()``:

1. single enqueue: ``spec.single_count`` jobs, one ``send_one`` (``await t(i).dispatch()``)
   at a time from ``spec.single_concurrency`` coroutines, onto a scratch broker that is
   thrown away;
2. bulk enqueue: ``spec.count`` jobs in ``send_many`` chunks of ``spec.chunk``;
3. work: peak RSS is reset (``/proc/self/clear_refs``), the clock starts, and one worker
   runs until the queue is empty. Tasks stamp the completion table; from it come
   throughput from worker start to the last completion, and steady-state throughput
   from the first to the last completion; and the worker process's CPU time per job.

Paced scenarios (latency) instead start the worker first and dispatch one job at a
time at ``spec.rate`` per second; each job's latency is its completion stamp minus the
moment its dispatch began.

Writes a JSON object to ``spec.result_path``. Standard library only (see :mod:`benchmarks`),
plus pyinstrument when profiling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import traceback
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchmarks import framework as fw_mod
from benchmarks.framework import Framework, Producer, RunSpec
from benchmarks.timing import CompletionTable


def read_status_kb(pid: int | str, field: str) -> int | None:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``: peak RSS; ``VmRSS``: now)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def _single_enqueue(framework: Framework, spec: RunSpec) -> dict[str, Any]:
    if spec.single_count <= 0:
        return {}
    producer = framework.producer(spec, scratch=True)
    await producer.open()
    try:
        todo: Iterator[int] = iter(range(spec.single_count))

        async def client() -> None:
            for i in todo:  # one iterator shared by every client
                await producer.send_one(i)

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(spec.single_concurrency)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.close()
    return {
        "single_enqueue_seconds": elapsed,
        "single_enqueue_rate": spec.single_count / elapsed,
    }


async def _serial_enqueue(framework: Framework, spec: RunSpec) -> dict[str, Any]:
    """``spec.serial_count`` jobs strictly one after another, onto a scratch broker.

    A sync framework's producer offers ``send_one_sync`` (its own blocking call), used
    here directly rather than through a thread.
    """
    if spec.serial_count <= 0:
        return {}
    producer = framework.producer(spec, scratch=True)
    await producer.open()
    try:
        blocking = getattr(producer, "send_one_sync", None)
        started = time.perf_counter()
        if blocking is not None:
            for i in range(spec.serial_count):
                blocking(i)
        else:
            for i in range(spec.serial_count):
                await producer.send_one(i)
        elapsed = time.perf_counter() - started
    finally:
        await producer.close()
    return {"serial_enqueue_seconds": elapsed, "serial_enqueue_rate": spec.serial_count / elapsed}


async def _bulk_enqueue(producer: Producer, spec: RunSpec) -> dict[str, Any]:
    started = time.perf_counter()
    for start in range(0, spec.count, spec.chunk):
        await producer.send_many(range(start, min(spec.count, start + spec.chunk)))
    elapsed = time.perf_counter() - started
    if not getattr(producer, "bulk", True):  # no bulk API: send_one from 100 clients
        return {"fill_enqueue_seconds": elapsed, "fill_enqueue_rate": spec.count / elapsed}
    return {"bulk_enqueue_seconds": elapsed, "bulk_enqueue_rate": spec.count / elapsed}


def _external(out: dict[str, Any], stats: dict[str, Any]) -> None:
    """A worker in processes of its own (peers): its tree's RSS, boot time and errors."""
    out["external_worker"] = True
    out["worker_peak_rss_kb"] = stats.get("tree_peak_rss_kb")
    out["worker_processes"] = stats.get("tree_processes")
    if "boot_seconds" in stats:
        out["worker_boot_seconds"] = stats["boot_seconds"]
    if stats.get("truncated"):  # cut at spec.budget: rates are over the jobs done by then
        out["truncated"] = True
    if stats.get("error"):
        out["worker_error"] = stats["error"]


class _Profile:
    """Profile the worker phase when ``spec.profile_path`` is set.

    ``pyinstrument`` (the default) samples the event-loop thread only, with Python
    call trees; ``py-spy`` attaches to this process from outside and samples every
    thread (drivers that run their I/O on a thread of their own show up there).
    """

    def __init__(self, spec: RunSpec) -> None:
        self.path = spec.profile_path
        self.profiler = spec.profiler
        self._pyinstrument: Any = None
        self._spy: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> _Profile:
        if self.path is None:
            return self
        if self.profiler == "py-spy":
            self._spy = subprocess.Popen(
                [
                    _py_spy(),
                    "record",
                    "--pid",
                    str(os.getpid()),
                    "--threads",
                    "--nonblocking",
                    "--rate",
                    "1000",
                    "--format",
                    "raw",
                    "--output",
                    self.path + ".raw",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # let it attach
        else:
            from pyinstrument import Profiler

            # sample the whole thread (the event loop included): where the CPU goes
            self._pyinstrument = Profiler(interval=0.0002, async_mode="disabled")
            self._pyinstrument.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.path is None:
            return
        if self._spy is not None:
            self._spy.send_signal(signal.SIGINT)
            self._spy.wait(timeout=60)
        if self._pyinstrument is not None:
            profiler = self._pyinstrument
            profiler.stop()
            Path(self.path + ".html").write_text(profiler.output_html())
            text = profiler.output_text(unicode=True, color=False, show_all=False)
            Path(self.path + ".txt").write_text(text)


def _py_spy() -> str:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def _completions(table: CompletionTable) -> list[float]:
    return sorted(t for t in table.snapshot() if t)


async def _burst(framework: Framework, spec: RunSpec) -> dict[str, Any]:
    out = await _serial_enqueue(framework, spec)
    out |= await _single_enqueue(framework, spec)
    producer = framework.producer(spec, scratch=False)
    await producer.open()
    try:
        out |= await _bulk_enqueue(producer, spec)
        before_work = getattr(framework, "before_work", None)
        if before_work is not None:  # not timed: e.g. ANALYZE, as autovacuum would have
            await before_work(spec)
        table = CompletionTable.create(Path(spec.workdir, "completions.bin"), spec.count)
        worker = framework.worker(spec, producer)
        out["peak_rss_reset"] = reset_peak_rss()
        with _Profile(spec):
            cpu_started = time.process_time()
            started = time.perf_counter()
            stats = await worker.run_until_empty()
            returned = time.perf_counter()
            cpu = time.process_time() - cpu_started
        out["worker_peak_rss_kb"] = read_status_kb("self", "VmHWM")
        if stats.get("external"):  # the clock starts when its first process is ready
            _external(out, stats)
            started = stats.get("ready_at", started)
            cpu = stats["cpu_seconds"]
    finally:
        await producer.close()
    done = _completions(table)
    table.close()
    out["stats"] = stats
    out["completed"] = len(done)
    if done:
        first, last = done[0], done[-1]
        if out.get("truncated") and stats.get("cut_at"):
            # cut at the budget: the rates are over the window, not up to the last
            # completion (a worker that stalled early must not look fast)
            last = max(last, stats["cut_at"])
        out["throughput"] = len(done) / (last - started)
        out["steady_throughput"] = (len(done) - 1) / (last - first) if last > first else None
        out["first_completion_seconds"] = first - started
        out["work_seconds"] = last - started
    out["worker_run_seconds"] = returned - started  # includes the worker's shutdown
    # CPU of the worker process (all its threads; not its children): the cost per job,
    # much less sensitive than wall-clock rates to other load on a shared machine
    out["worker_cpu_seconds"] = cpu
    jobs = len(done) if out.get("truncated") else spec.count
    if jobs:
        out["cpu_us_per_job"] = cpu / jobs * 1e6
    return out


async def _paced(framework: Framework, spec: RunSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n = spec.count
    sent = array("d", bytes(8 * n))
    table = CompletionTable.create(Path(spec.workdir, "completions.bin"), n)
    producer = framework.producer(spec, scratch=False)
    await producer.open()
    try:
        worker = framework.worker(spec, producer)
        out["peak_rss_reset"] = reset_peak_rss()
        await worker.start()
        await asyncio.sleep(0.5)  # let it settle into waiting for work
        interval = 1.0 / spec.rate
        due = time.perf_counter()
        for i in range(n):
            now = time.perf_counter()
            if now < due:
                await asyncio.sleep(due - now)
            sent[i] = time.perf_counter()
            await producer.send_one(i)
            due += interval
        deadline = time.perf_counter() + 60
        while table.count() < n and time.perf_counter() < deadline:
            await asyncio.sleep(0.02)
        out["stats"] = await worker.stop()
        out["worker_peak_rss_kb"] = read_status_kb("self", "VmHWM")
        if out["stats"].get("external"):
            _external(out, out["stats"])
    finally:
        await producer.close()
    stamps = table.snapshot()
    table.close()
    latencies = sorted((stamps[i] - sent[i]) * 1000 for i in range(n) if stamps[i])
    out["completed"] = len(latencies)
    if latencies:
        q = statistics.quantiles(latencies, n=100, method="inclusive")
        out["latency_ms"] = {
            "p50": q[49],
            "p90": q[89],
            "p99": q[98],
            "max": latencies[-1],
            "mean": statistics.fmean(latencies),
        }
    return out


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    return None


def run(spec: RunSpec) -> dict[str, Any]:
    logging.basicConfig(level=logging.WARNING)  # per-job INFO logs would dominate
    framework = fw_mod.load(spec.framework)
    main = _paced if spec.paced else _burst
    prepare = getattr(framework, "prepare", None)
    with asyncio.Runner(loop_factory=_loop_factory(spec.loop)) as runner:
        if prepare is not None:  # not timed: e.g. the schema in the run's fresh database
            runner.run(prepare(spec))
        result = runner.run(main(framework, spec))
    if result.get("truncated") and not result.get("completed"):
        result["error"] = f"no job completed within the {spec.budget:g} s budget"
    elif result.get("completed") != spec.count and not result.get("truncated"):
        why = f": {result['worker_error']}" if result.get("worker_error") else ""
        result["error"] = f"only {result.get('completed')} of {spec.count} jobs completed{why}"
    return result


def probe(framework_name: str, targets: list[str]) -> dict[str, Any]:
    framework = fw_mod.load(framework_name)
    return {
        "unavailable": {t: framework.unavailable(t) for t in targets},
        "versions": framework.versions(),
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--probe"]:
        print(json.dumps(probe(argv[1], argv[2:])))
        return 0
    spec = RunSpec.load(Path(argv[0]))
    try:
        result = run(spec)
    except Exception:
        result = {"error": traceback.format_exc()}
    Path(spec.result_path).write_text(json.dumps(result))
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
