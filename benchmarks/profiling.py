"""Summaries of py-spy's collapsed stacks (``--format raw``), per thread.

pyinstrument (the HTML/text profiles) sees the event-loop thread only; py-spy sees
every thread, so this is where a driver's own I/O thread shows up. Idle samples
(threads blocked in a wait) are not recorded, so a thread's sample count over
the phase's duration is how busy it was.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r" \((.*?):\d+\)$")


def _function(frame: str) -> str:
    """``Worker._slot (conveyor/worker/worker.py:218)`` -> ``Worker._slot (conveyor/...py)``."""
    return _LINE.sub(r" (\1)", frame)


def summarize(raw: Path, *, seconds: float | None, rate: int = 1000, top: int = 15) -> str:
    """Per thread: share of the phase it was busy, top self and inclusive functions."""
    per_thread: Counter[str] = Counter()
    self_fn: defaultdict[str, Counter[str]] = defaultdict(Counter)
    self_line: defaultdict[str, Counter[str]] = defaultdict(Counter)
    inclusive: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        head, *frames = stack.split(";")
        thread = re.sub(r"^thread \(\d+\): ?", "", head) or "(unnamed)"
        thread = re.sub(r"_\d+$", "", thread)  # conveyor-sqlite_0 -> conveyor-sqlite
        per_thread[thread] += n
        if frames:
            self_fn[thread][_function(frames[-1])] += n
            self_line[thread][frames[-1]] += n
        for fn in {_function(f) for f in frames}:
            inclusive[thread][fn] += n
    total = sum(per_thread.values())
    out = [
        f"py-spy, {rate} Hz, all threads, idle samples excluded; {total} samples"
        + (f" over a {seconds:.3f} s worker phase" if seconds else ""),
        "",
    ]
    for thread, n in per_thread.most_common():
        busy = f", busy {n / (rate * seconds):.0%} of the phase" if seconds else ""
        out.append(f"== thread {thread}: {n} samples ({n / total:.0%} of all){busy}")
        out.append("  self time, by function:")
        out += [f"    {c / n:6.1%}  {f}" for f, c in self_fn[thread].most_common(top)]
        out.append("  self time, by line:")
        out += [f"    {c / n:6.1%}  {f}" for f, c in self_line[thread].most_common(top)]
        out.append("  inclusive time:")
        out += [f"    {c / n:6.1%}  {f}" for f, c in inclusive[thread].most_common(top + 10)]
        out.append("")
    return "\n".join(out)
