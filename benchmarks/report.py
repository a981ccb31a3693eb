"""Aggregating runs, and writing the table, ``latest.{json,md,png}``."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.scenarios import SCENARIOS

DASH = "\u2013"  # en dash, for ranges

#: (framework, target, scenario) -> minimum no-op throughput, jobs/s (the issue's targets)
TARGETS: dict[tuple[str, str, str], float] = {
    ("conveyor", "memory", "noop"): 50_000.0,
    ("conveyor", "sqlite", "noop"): 10_000.0,
}


@dataclass(frozen=True, slots=True)
class Stat:
    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        values = [v for v in values if v is not None]
        if not values:
            return None
        return cls(statistics.median(values), min(values), max(values), len(values))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "runs": self.n}


def _dig(run: dict[str, Any], path: str) -> float | None:
    value: Any = run
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return float(value) if isinstance(value, int | float) else None


#: metric -> where it is in a run's result
METRICS = {
    "bulk_enqueue_rate": "bulk_enqueue_rate",
    "single_enqueue_rate": "single_enqueue_rate",
    "throughput": "throughput",
    "steady_throughput": "steady_throughput",
    "first_completion_seconds": "first_completion_seconds",
    "peak_rss_mb": "peak_rss_mb",
    "cpu_us_per_job": "cpu_us_per_job",
    "latency_p50_ms": "latency_ms.p50",
    "latency_p90_ms": "latency_ms.p90",
    "latency_p99_ms": "latency_ms.p99",
    "latency_max_ms": "latency_ms.max",
}


@dataclass(slots=True)
class Group:
    """Every run of one (framework, target, scenario)."""

    framework: str
    target: str
    scenario: str
    count: int
    concurrency: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.framework, self.target, self.scenario)

    def stat(self, metric: str) -> Stat | None:
        return Stat.of([v for r in self.runs if (v := _dig(r, METRICS[metric])) is not None])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "framework": self.framework,
            "target": self.target,
            "scenario": self.scenario,
            "jobs": self.count,
            "concurrency": self.concurrency,
            "errors": self.errors,
        }
        for metric in METRICS:
            s = self.stat(metric)
            if s is not None:
                out[metric] = s.as_dict()
        target = TARGETS.get(self.key)
        tp = self.stat("throughput")
        if target is not None and tp is not None:
            out["target_jobs_per_s"] = target
            out["meets_target"] = tp.median >= target
        return out


# -- formatting -------------------------------------------------------------------------


def _rate(s: Stat | None) -> str:
    if s is None:
        return "—"
    if s.n == 1:
        return f"{s.median:,.0f}"
    return f"{s.median:,.0f} ({s.low:,.0f}{DASH}{s.high:,.0f})"


def _ms(s: Stat | None) -> str:
    if s is None:
        return "—"
    if s.n == 1:
        return f"{s.median:.2f}"
    return f"{s.median:.2f} ({s.low:.2f}{DASH}{s.high:.2f})"


def _us(s: Stat | None) -> str:
    if s is None:
        return "—"
    if s.n == 1:
        return f"{s.median:,.1f}"
    return f"{s.median:,.1f} ({s.low:,.1f}{DASH}{s.high:,.1f})"


def _mb(s: Stat | None) -> str:
    return "—" if s is None else f"{s.median:,.0f}"


def _target(g: Group) -> str:
    goal = TARGETS.get(g.key)
    tp = g.stat("throughput")
    if goal is None or tp is None:
        return ""
    return f"{'✅' if tp.median >= goal else '❌'} ≥ {goal:,.0f}"


THROUGHPUT_HEADERS = [
    "driver",
    "scenario",
    "jobs",
    "conc.",
    "enqueue bulk /s",
    "enqueue single /s",
    "throughput /s (start→last)",
    "steady /s (first→last)",
    "worker CPU µs/job",
    "peak RSS MB",
    "target",
]
LATENCY_HEADERS = ["driver", "jobs", "rate /s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
CODEC_HEADERS = ["codec", "bytes", "encode /s", "decode /s", "round trip /s", "note"]


def throughput_rows(groups: Sequence[Group]) -> list[list[str]]:
    rows = []
    for g in groups:
        if SCENARIOS[g.scenario].paced:
            continue
        if not g.runs:
            rows.append([g.target, g.scenario, f"{g.count:,}", str(g.concurrency)] + ["failed"] * 7)
            continue
        rows.append(
            [
                g.target,
                g.scenario,
                f"{g.count:,}",
                f"{g.concurrency:,}",
                _rate(g.stat("bulk_enqueue_rate")),
                _rate(g.stat("single_enqueue_rate")),
                _rate(g.stat("throughput")),
                _rate(g.stat("steady_throughput")),
                _us(g.stat("cpu_us_per_job")),
                _mb(g.stat("peak_rss_mb")),
                _target(g),
            ]
        )
    return rows


def latency_rows(groups: Sequence[Group]) -> list[list[str]]:
    rows = []
    for g in groups:
        scenario = SCENARIOS[g.scenario]
        if not scenario.paced:
            continue
        rows.append(
            [
                g.target,
                f"{g.count:,}",
                f"{scenario.rate:,.0f}",
                _ms(g.stat("latency_p50_ms")),
                _ms(g.stat("latency_p90_ms")),
                _ms(g.stat("latency_p99_ms")),
                _ms(g.stat("latency_max_ms")),
            ]
        )
    return rows


def codec_rows(codecs: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            c["codec"],
            str(c["bytes"]),
            f"{c['encode_ops']:,.0f}",
            f"{c['decode_ops']:,.0f}",
            f"{c['roundtrip_ops']:,.0f}",
            c["note"],
        ]
        for c in codecs
    ]


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_tables(
    groups: Sequence[Group], codecs: Sequence[dict[str, Any]], skipped: dict[str, str]
) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    for title, headers, rows in (
        ("Processing (one worker process)", THROUGHPUT_HEADERS, throughput_rows(groups)),
        ("Dispatch-to-completion latency", LATENCY_HEADERS, latency_rows(groups)),
        (
            "Codecs (one job: encode args + envelope, decode both)",
            CODEC_HEADERS,
            codec_rows(codecs),
        ),
    ):
        if not rows:
            continue
        table = Table(title=title)
        for h in headers:
            table.add_column(
                h, justify="left" if h in ("driver", "scenario", "codec", "note") else "right"
            )
        for row in rows:
            table.add_row(*row)
        console.print(table)
    for target, reason in skipped.items():
        console.print(f"[yellow]{target}: skipped: {reason}[/yellow]")
    for g in groups:
        for err in g.errors:
            console.print(f"[red]{g.target}/{g.scenario}: {err.strip().splitlines()[-1]}[/red]")


# -- files ---------------------------------------------------------------------------------


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_markdown(
    path: Path,
    *,
    machine: dict[str, Any],
    versions: dict[str, str],
    config: dict[str, Any],
    groups: Sequence[Group],
    codecs: Sequence[dict[str, Any]],
    skipped: dict[str, str],
    sections: Sequence[str] = (),
) -> None:
    """``sections``: more markdown (the side-by-side comparison), placed after the machine."""
    parts = [
        "# Conveyor benchmark results",
        "",
        f"Generated by `python -m benchmarks {config['argv']}` on {machine['date']}."
        " Medians of the repeated runs, with min-max in brackets."
        " See `docs/performance.md` for what is measured and how.",
        "",
        "## Machine",
        "",
        markdown_table(
            ["fact", "value"],
            [
                ["CPU", str(machine["cpu"])],
                ["cores", f"{machine['cores']} ({machine['usable_cores']} usable)"],
                ["memory", f"{machine['memory_mb']:,} MB" if machine["memory_mb"] else "?"],
                ["OS", str(machine["os"])],
                ["Python", str(machine["python"])],
                ["event loop", str(config["loop"])],
                ["git", str(machine["git"])],
                ["packages", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))],
                ["CPU task body", f"{config.get('cpu_task_ms', 0):.2f} ms (measured)"],
                ["runs per cell", str(config["repeat"])],
            ],
        ),
        "",
    ]
    busy = [b for g in groups for r in g.runs if (b := r.get("busy_cores_before")) is not None]
    if busy:
        parts += [
            "Other processes' CPU use just before each run (this machine is shared): "
            f"median {statistics.median(busy):.2f}, max {max(busy):.2f} cores"
            f" (the harness waits up to {config['settle']:g} s for under "
            f"{config['quiet_cores']:g}).",
            "",
        ]
    for section in sections:
        parts += [section, ""]
    rows = throughput_rows(groups)
    if rows:
        parts += [
            "## Processing (one worker process)",
            "",
            markdown_table(THROUGHPUT_HEADERS, rows),
            "",
            "- *enqueue bulk*: `dispatch_many` in chunks of "
            f"{config['chunk']:,}; *enqueue single*: `await task(i).dispatch()` from "
            f"{config['single_concurrency']} coroutines ({config['single_count']} jobs).",
            "- *throughput*: jobs ÷ (last completion - worker start); *steady*: "
            "(jobs - 1) ÷ (last - first completion).",
            "- *peak RSS*: the worker process (peak since the worker started; the memory:// "
            "broker lives in it) plus every child process (process pool, forkserver).",
            "",
        ]
    rows = latency_rows(groups)
    if rows:
        parts += [
            "## Dispatch-to-completion latency",
            "",
            markdown_table(LATENCY_HEADERS, rows),
            "",
            "A running, idle worker; no-op jobs dispatched one at a time at a fixed rate from the "
            "same process; latency = completion stamp - start of `dispatch()`.",
            "",
        ]
    if codecs:
        parts += [
            "## Codecs",
            "",
            markdown_table(CODEC_HEADERS, codec_rows(codecs)),
            "",
        ]
    if skipped:
        parts += ["## Skipped", ""]
        parts += [f"- {target}: skipped: {reason}" for target, reason in skipped.items()]
        parts.append("")
    failures = [(g, e) for g in groups for e in g.errors]
    if failures:
        parts += ["## Failed runs", ""]
        parts += [f"- {g.target}/{g.scenario}: {e.strip().splitlines()[-1]}" for g, e in failures]
        parts.append("")
    path.write_text("\n".join(parts))


def write_chart(path: Path, groups: Sequence[Group], machine: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    burst = [g for g in groups if not SCENARIOS[g.scenario].paced and g.runs]
    paced = [g for g in groups if SCENARIOS[g.scenario].paced and g.runs]
    targets = sorted({g.target for g in burst + paced}, key=lambda t: (t != "memory", t))
    scenarios = [s for s in SCENARIOS if any(g.scenario == s for g in burst)]
    panels = 2 + (1 if paced else 0)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.6), squeeze=False)
    width = 0.8 / max(len(targets), 1)

    def bars(ax: Any, labels: list[str], series: dict[str, list[Stat | None]], unit: str) -> None:
        for k, (name, stats) in enumerate(series.items()):
            xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))]
            med = [s.median if s else 0.0 for s in stats]
            err = [
                [s.median - s.low if s else 0.0 for s in stats],
                [s.high - s.median if s else 0.0 for s in stats],
            ]
            drawn = ax.bar(xs, med, width * 0.95, yerr=err, capsize=3, label=name)
            ax.bar_label(
                drawn,
                labels=[f"{m:,.0f}" if m >= 100 else f"{m:.2f}" for m in med],
                fontsize=7,
                padding=2,
            )
        ax.set_xticks(range(len(labels)), labels)
        ax.set_ylabel(unit)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)

    by_key = {(g.target, g.scenario): g for g in groups}

    def stat(target: str, scenario: str, metric: str) -> Stat | None:
        g = by_key.get((target, scenario))
        return g.stat(metric) if g else None

    ax = axes[0][0]
    bars(
        ax,
        scenarios,
        {t: [stat(t, s, "throughput") for s in scenarios] for t in targets},
        "jobs/s (log)",
    )
    ax.set_yscale("log")
    ax.set_title("Processing throughput, one worker")

    ax = axes[0][1]
    labels = ["bulk", "single"]
    bars(
        ax,
        labels,
        {
            t: [stat(t, "noop", "bulk_enqueue_rate"), stat(t, "noop", "single_enqueue_rate")]
            for t in targets
        },
        "jobs/s",
    )
    ax.set_title("Enqueue rate (no-op job)")

    if paced:
        ax = axes[0][2]
        labels = ["p50", "p90", "p99"]
        bars(
            ax,
            labels,
            {
                t: [stat(t, "latency", f"latency_{q}_ms") for q in labels]
                for t in targets
                if (t, "latency") in by_key
            },
            "ms",
        )
        ax.set_title("Dispatch-to-completion latency")

    fig.suptitle(
        f"Conveyor — {machine['cpu']}, {machine['cores']} cores — {machine['date']}", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
