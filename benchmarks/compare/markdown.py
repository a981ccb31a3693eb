"""A comparison as a section of ``latest.md``, and as ``latest.json``'s ``side_by_side``."""

from __future__ import annotations

from typing import Any

from benchmarks import redisctl
from benchmarks.compare import run, tables, targets
from benchmarks.compare.model import Comparison
from benchmarks.report import DASH, markdown_table
from benchmarks.scenarios import CHUNK, SCENARIOS

TIMES = "\u00d7"


def _notes(comp: Comparison, repeat: int) -> list[str]:
    return [
        f"- *setting*: `cN` = N jobs in flight per worker process; `K{TIMES}` = K worker "
        "processes; then the framework's executor; `+2p` = a process pool of 2. NOOP's first "
        "row per framework is concurrency 10 (the setting of AsyncTasQ's published "
        "comparison); **best** marks the winner of the sweep (below) by steady-state "
        f"throughput, measured like the c10 row ({repeat} full runs). IO and CPU show the "
        "best setting only (c10 is one of the sweep's candidates: for IO it is the same "
        f"ceiling for everyone, 10 slots {TIMES} 100 sleeps/s).",
        "- *throughput*: jobs ÷ (last completion - worker start; for a peer, when its first "
        "worker process was ready: *worker boot* is from spawning it until then); *steady*: "
        "(jobs - 1) ÷ (last - first completion).",
        "- *peak RSS*: the worker's process tree (`VmHWM` of each process, summed).",
        f"- Every worker is stopped {run.BUDGET_SECONDS:g} s after it is ready (sweep runs: "
        f"{run.SWEEP_BUDGET_SECONDS:g} s); a run cut short is rated by the jobs completed by "
        "then over the whole window up to the cut (so a worker that stalls is not rated by "
        f"its early burst; †N: N of the {repeat} runs were cut). Every run still enqueues "
        "the scenario's full count first (the sweep: a quarter), so each framework works "
        "from the same queue depth.",
        "",
    ]


def _body(comp: Comparison, target_title: str, target_rows: list[list[str]]) -> list[str]:
    parts: list[str] = []
    titles = {s.name: s.title for s in SCENARIOS.values()}
    for sc in comp.scenarios:
        if SCENARIOS[sc].paced:
            continue
        rows = tables.throughput_table(comp, sc)
        if rows:
            parts += [
                f"### {sc.upper()}: {titles[sc]}",
                "",
                markdown_table(tables.throughput_headers(sc), rows),
                "",
            ]
    rows = tables.enqueue_table(comp)
    if rows:
        parts += [
            "### Enqueue (NOOP job)",
            "",
            markdown_table(tables.ENQUEUE_HEADERS, rows),
            "",
            f"One at a time: {run.SERIAL_MAX:,} jobs, each awaited before the next (a sync "
            f"framework's own blocking call). 100 concurrent: {run.SINGLE_COUNT:,} jobs from 100 "
            "coroutines (sync frameworks: 100 threads). Bulk: the framework's bulk API in "
            f"chunks of {CHUNK:,}.",
            "",
        ]
    rows = tables.latency_table(comp)
    if rows:
        parts += [
            "### Dispatch-to-start latency",
            "",
            markdown_table(tables.LATENCY_HEADERS, rows),
            "",
            f"{run.LATENCY_RATE * run.LATENCY_SECONDS:,.0f} no-op jobs dispatched one at a time "
            f"at {run.LATENCY_RATE:,.0f}/s to an idle, running worker; latency = the task's "
            "stamp - the moment its dispatch began (same clock, `CLOCK_MONOTONIC`, across "
            "processes). Framework defaults otherwise.",
            "",
        ]
    if target_rows:
        parts += [f"### {target_title}", "", markdown_table(targets.HEADERS, target_rows), ""]
    rows = tables.sweep_rows(comp)
    if rows:
        parts += [
            "### Sweep (steady jobs/s; NOOP c10: its median; the others: one short run of a "
            "quarter of the jobs)",
            "",
            markdown_table(["framework", "scenario", "candidates", "best"], rows),
            "",
        ]
    parts += ["### Versions", ""]
    parts += [
        f"- **{fw}**: "
        + ", ".join(f"{k} {v}" for k, v in sorted(comp.versions.get(fw, {}).items()))
        for fw in comp.frameworks
    ]
    parts.append("")
    if comp.skipped:
        parts += ["### Not measured", ""]
        parts += [f"- {fw}: {why}" for fw, why in comp.skipped.items()]
        parts.append("")
    failures = [r for r in comp.raw if "error" in r["result"]]  # the sweep's too
    if failures:
        parts += ["### Failed runs", ""]
        parts += [
            f"- {r['framework']}/{r['scenario']}/{r['setting']} ({r['role']}): "
            + (str(r["result"]["error"]).strip().splitlines() or ["?"])[-1][:400]
            for r in failures
        ]
        parts.append("")
    return parts


def redis_section(comp: Comparison, cpu_task_ms: float, repeat: int) -> str:
    parts = [
        "## Side by side on Redis",
        "",
        f"Every framework on the same Redis ({comp.redis.get('redis_version', '?')}, same machine"
        f"{'; a private server started for this run' if comp.private_redis else ''}, "
        f"database {redisctl.parts()[2]}, flushed before every run), one after another; "
        f"{repeat} run(s) per cell, median (min{DASH}max). All jobs are enqueued before the "
        "worker starts; completion is observed the same way for everyone (each task stores "
        "`perf_counter()` into a shared memory-mapped table). Peers run from their own "
        "virtualenvs; every worker (Conveyor's too) runs in worker processes of its own, "
        "started by the harness, its clock starting when the first is ready. "
        f"This comparison took {comp.seconds / 60:.1f} min.",
        "",
        *_notes(comp, repeat),
    ]
    parts += _body(comp, "Conveyor's targets (issue 4)", targets.redis_targets(comp, cpu_task_ms))
    return "\n".join(parts)


def _server(comp: Comparison, target: str) -> str:
    version = comp.servers.get(target, {}).get("version", "?")
    return version.split(" on ")[0].split(",")[0]


def sql_section(comp: Comparison, repeat: int) -> str:
    parts = [
        "## Side by side on PostgreSQL and MariaDB",
        "",
        f"Conveyor's `postgresql://` driver and Procrastinate on the same PostgreSQL "
        f"({_server(comp, 'postgresql')}), and Conveyor's `mysql://` driver on MariaDB "
        f"({_server(comp, 'mysql')}), both servers on this machine with their default "
        "settings; no MySQL-family peer is measured. Every run gets two empty databases of its "
        "own (one for the jobs the worker runs, one for the scratch jobs that only time "
        "enqueueing), created before the run, its schema created by the framework itself "
        "(`conveyor migrate`, Procrastinate's `apply_schema`) before anything is timed, and "
        f"dropped after it. {repeat} run(s) per cell, median (min{DASH}max); the same "
        "scenarios, phases and completion table as on Redis. "
        f"This comparison took {comp.seconds / 60:.1f} min.",
        "",
        *_notes(comp, repeat),
    ]
    parts += _body(comp, "Conveyor's targets on SQL (issue 5)", targets.sql_targets(comp))
    return "\n".join(parts)


def as_json(comp: Comparison, target_rows: list[list[str]]) -> dict[str, Any]:
    return {
        "title": comp.title,
        "frameworks": comp.frameworks,
        "entrants": {k: [e.framework, e.target] for k, e in comp.entrants.items()},
        "servers": comp.servers,
        "redis": comp.redis,
        "seconds": comp.seconds,
        "skipped": comp.skipped,
        "versions": comp.versions,
        "best": {f"{fw}/{sc}": label for (fw, sc), label in comp.best.items()},
        "sweeps": {f"{fw}/{sc}": scores for (fw, sc), scores in comp.sweeps.items()},
        "cells": [c.summary() for c in comp.cells.values()],
        "targets": [dict(zip(targets.HEADERS, r, strict=True)) for r in target_rows],
        "runs": comp.raw,
    }
