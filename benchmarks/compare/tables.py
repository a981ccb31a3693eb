"""A comparison's tables: throughput per scenario, enqueue, latency, sweep."""

from __future__ import annotations

from benchmarks.compare.model import Cell, Comparison
from benchmarks.report import DASH, Stat


def _fmt(s: Stat | None, unit: str = "rate") -> str:
    if s is None:
        return "—"
    f = {"rate": "{:,.0f}", "ms": "{:.2f}", "us": "{:,.1f}", "s": "{:.2f}", "pct": "{:.1f} %"}[unit]
    if s.n == 1:
        return f.format(s.median)
    return f"{f.format(s.median)} ({f.format(s.low)}{DASH}{f.format(s.high)})"


def _mb(s: Stat | None) -> str:
    return "—" if s is None else f"{s.median:,.0f}"


def _rows_for(comp: Comparison, scenario: str) -> list[Cell]:
    """Each framework's concurrency-10 cell and (when different) its best cell, fastest first."""
    out = []
    for fw in comp.frameworks:
        ref = comp.ref(fw, scenario)
        best = comp.best_cell(fw, scenario)
        for cell in (ref, best):
            if cell is not None and cell not in out:
                out.append(cell)

    def speed(cell: Cell) -> float:
        best = comp.best_cell(cell.framework, scenario)
        s = best.stat("steady_throughput") if best else None
        return -(s.median if s else 0.0)

    out.sort(key=lambda c: (speed(c), c.framework, "c10" not in c.roles))
    return out


THROUGHPUT_HEADERS = [
    "framework",
    "setting",
    "throughput /s (start→last)",
    "steady /s (first→last)",
    "worker boot s",
    "worker CPU µs/job",
    "peak RSS MB",
]


def throughput_table(comp: Comparison, scenario: str) -> list[list[str]]:
    rows = []
    for cell in _rows_for(comp, scenario):
        setting = cell.setting.label + (" **best**" if "best" in cell.roles else "")
        if not cell.runs:
            blank = len(throughput_headers(scenario)) - 3
            rows.append([cell.framework, setting, "failed", *[""] * blank])
            continue
        cut = sum(1 for r in cell.runs if r.get("truncated"))
        mark = f" †{cut}" if cut else ""
        row = [
            cell.framework,
            setting,
            _fmt(cell.stat("throughput")) + mark,
            _fmt(cell.stat("steady_throughput")),
            _fmt(cell.stat("worker_boot_seconds"), "s"),
            _fmt(cell.stat("cpu_us_per_job"), "us"),
            _mb(cell.stat("peak_rss_mb")),
        ]
        if scenario == "cpu":
            row.insert(3, _fmt(cell.stat("bare_share"), "pct"))
        rows.append(row)
    return rows


def throughput_headers(scenario: str) -> list[str]:
    """The CPU table also gives each run's rate as a share of the bare loop before it."""
    if scenario != "cpu":
        return THROUGHPUT_HEADERS
    return [*THROUGHPUT_HEADERS[:3], "% of two cores' bare loop", *THROUGHPUT_HEADERS[3:]]


ENQUEUE_HEADERS = ["framework", "one at a time /s", "100 concurrent /s", "bulk /s", "note"]


def enqueue_table(comp: Comparison) -> list[list[str]]:
    rows = []
    for fw in comp.frameworks:
        cell = comp.ref(fw, "noop")
        if cell is None or not cell.runs:
            continue
        bulk = cell.stat("bulk_enqueue_rate")
        fill = cell.stat("fill_enqueue_rate")
        note = "" if bulk else f"no bulk API (filling the queue from 100 producers: {_fmt(fill)}/s)"
        rows.append(
            [
                fw,
                _fmt(cell.stat("serial_enqueue_rate")),
                _fmt(cell.stat("single_enqueue_rate")),
                _fmt(bulk),
                note,
            ]
        )
    rows.sort(key=lambda r: -float(r[2].split(" ")[0].replace(",", "") or 0) if r[2] != "—" else 0)
    return rows


LATENCY_HEADERS = ["framework", "setting", "p50 ms", "p99 ms", "max ms"]


def latency_table(comp: Comparison) -> list[list[str]]:
    rows = []
    for fw in comp.frameworks:
        cell = comp.ref(fw, "latency")
        if cell is None:
            continue
        if not cell.runs:
            rows.append([fw, cell.setting.label, "failed", "", ""])
            continue
        rows.append(
            [
                fw,
                cell.setting.label,
                _fmt(cell.stat("latency_ms.p50"), "ms"),
                _fmt(cell.stat("latency_ms.p99"), "ms"),
                _fmt(cell.stat("latency_ms.max"), "ms"),
            ]
        )
    rows.sort(key=lambda r: float(r[2].split(" ")[0]) if r[2][:1].isdigit() else 1e9)
    return rows


def sweep_rows(comp: Comparison) -> list[list[str]]:
    rows = []
    for (fw, sc), scores in comp.sweeps.items():
        shown = ", ".join(
            f"{label}: {'failed' if s is None else f'{s:,.0f}'}" for label, s in scores
        )
        rows.append([fw, sc, shown, comp.best[(fw, sc)]])
    return rows
