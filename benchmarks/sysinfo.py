"""Machine facts for the report, and peak-RSS sampling of a run's process tree.

Standard library only (see :mod:`benchmarks`).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_mb() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def _git_revision(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    revision = out.stdout.strip()
    if not revision:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout.strip()
    return revision + ("+dirty" if dirty else "")


def package_versions(names: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def machine(root: Path) -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_mb": _mem_total_mb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "git": _git_revision(root),
    }


# -- process-tree peak RSS ------------------------------------------------------------


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (of every thread: a child may be started from one)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
        except OSError:
            continue
        out.extend(int(p) for p in text.split())
    return out


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = children(pid)
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children(p))
    return found


def peak_rss_kb(pid: int) -> int | None:
    """``VmHWM`` of ``pid``: its peak resident set size."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class TreeSampler:
    """Samples the peak RSS of ``pid``'s descendants (process-pool children and the like).

    Call :meth:`sample` periodically from the parent (it costs the benchmark nothing
    but a little of this process's CPU); :attr:`total_kb` sums the highest ``VmHWM``
    seen for each descendant.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peaks: dict[int, int] = {}

    def sample(self) -> None:
        for p in descendants(self.pid):
            kb = peak_rss_kb(p)
            if kb is not None and kb > self.peaks.get(p, 0):
                self.peaks[p] = kb

    @property
    def total_kb(self) -> int:
        return sum(self.peaks.values())


# -- how busy the machine is ------------------------------------------------------------


def _cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs, from ``/proc/stat``."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_cores(window: float = 0.5) -> float:
    """How many cores' worth of CPU the whole machine used over the last ``window`` s."""
    try:
        busy0, total0 = _cpu_times()
        time.sleep(window)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    cores = os.cpu_count() or 1
    return (busy1 - busy0) / max(total1 - total0, 1e-9) * cores


def wait_for_quiet(limit: float, max_wait: float, window: float = 0.5) -> float:
    """Wait (up to ``max_wait`` s) until other work uses under ``limit`` cores; return the use.

    Each look takes ``window`` seconds (:func:`busy_cores`).
    """
    deadline = time.monotonic() + max_wait
    while True:
        used = busy_cores(window)
        if used < limit or time.monotonic() >= deadline:
            return used
