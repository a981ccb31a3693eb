"""A comparison's chart: throughput per scenario, enqueue, latency and RSS, side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.compare.model import Cell, Comparison, median
from benchmarks.compare.run import LATENCY_RATE
from benchmarks.report import DASH, Stat
from benchmarks.scenarios import SCENARIOS


def _stats(cells: Sequence[Cell | None], path: str) -> list[Stat | None]:
    return [c.stat(path) if c is not None else None for c in cells]


def _hbars(ax: Any, labels: list[str], series: list[tuple[str, list[Stat | None], str]]) -> None:
    """Grouped horizontal bars with min-max whiskers, one group per framework."""
    height = 0.8 / max(len(series), 1)
    for k, (name, stats, color) in enumerate(series):
        ys = [i + (k - (len(series) - 1) / 2) * height for i in range(len(labels))]
        med = [s.median if s else 0.0 for s in stats]
        err = [
            [s.median - s.low if s else 0.0 for s in stats],
            [s.high - s.median if s else 0.0 for s in stats],
        ]
        bars = ax.barh(ys, med, height * 0.9, xerr=err, capsize=2, label=name, color=color)
        text = [f"{m:,.0f}" if m >= 10 else f"{m:.2f}" if m else "" for m in med]
        ax.bar_label(bars, labels=text, fontsize=6, padding=2)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)


RED, BLUE, GREEN, PURPLE = "#d62728", "#1f77b4", "#2ca02c", "#9467bd"


def chart(path: Path, comp: Comparison, machine: dict[str, Any], subtitle: str) -> None:
    """Throughput per scenario, enqueue, latency and RSS; ``subtitle`` says where."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fws = list(comp.frameworks)
    if not fws:
        return
    # (title, x label, log scale, frameworks in order, series)
    panels: list[tuple[str, str, bool, list[str], list[tuple[str, list[Stat | None], str]]]] = []

    def ordered(key: Callable[[str], float | None], reverse: bool = True) -> list[str]:
        return sorted(fws, key=lambda fw: (key(fw) or 0.0) * (-1 if reverse else 1))

    for sc in (s for s in comp.scenarios if not SCENARIOS[s].paced):
        order = ordered(lambda fw, sc=sc: median(comp.best_cell(fw, sc), "steady_throughput"))
        best = [comp.best_cell(fw, sc) for fw in order]
        ref = [comp.ref(fw, sc) for fw in order]
        jobs = next((c.count for c in (*ref, *best) if c is not None), 0)
        series = [
            ("best setting", _stats(best, "throughput"), RED),
            ("concurrency 10", _stats(ref, "throughput"), BLUE),
        ]
        panels.append(
            (f"{sc.upper()}: {jobs:,} jobs", "jobs/s, start→last (log)", True, order, series)
        )
    if "noop" in comp.scenarios:
        order = ordered(lambda fw: median(comp.ref(fw, "noop"), "single_enqueue_rate"))
        cells = [comp.ref(fw, "noop") for fw in order]
        series = [
            ("100 concurrent", _stats(cells, "single_enqueue_rate"), RED),
            ("bulk API", _stats(cells, "bulk_enqueue_rate"), GREEN),
            ("one at a time", _stats(cells, "serial_enqueue_rate"), BLUE),
        ]
        panels.append(("Enqueue (no-op job)", "jobs/s (log)", True, order, series))
    if any(SCENARIOS[s].paced for s in comp.scenarios):
        order = ordered(lambda fw: median(comp.ref(fw, "latency"), "latency_ms.p50"), False)
        cells = [comp.ref(fw, "latency") for fw in order]
        series = [
            ("p50", _stats(cells, "latency_ms.p50"), RED),
            ("p99", _stats(cells, "latency_ms.p99"), BLUE),
        ]
        title = f"Dispatch-to-start latency at {LATENCY_RATE:,.0f} jobs/s"
        panels.append((title, "ms (log)", True, order, series))
    if "noop" in comp.scenarios:
        order = ordered(lambda fw: median(comp.ref(fw, "noop"), "peak_rss_mb"), False)
        series = [
            ("NOOP at c10", _stats([comp.ref(fw, "noop") for fw in order], "peak_rss_mb"), PURPLE)
        ]
        panels.append(("Worker peak RSS (process tree)", "MB", False, order, series))

    cols = min(3, len(panels))
    rows = (len(panels) + cols - 1) // cols
    size = (6.0 * cols, (0.45 * len(fws) + 1.6) * rows)
    fig, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    for k, (title, unit, log, order, series) in enumerate(panels):
        ax = axes[k // cols][k % cols]
        _hbars(ax, order, [s for s in series if any(s[1])])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(unit, fontsize=8)
        if log:
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.margins(x=0.12)
    for k in range(len(panels), rows * cols):
        axes[k // cols][k % cols].axis("off")
    fig.suptitle(
        f"Task queues side by side on {subtitle}, one worker "
        f"each - {machine['cpu']}, {machine['cores']} cores - {machine['date']} "
        f"(median of the runs, whiskers min{DASH}max)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
