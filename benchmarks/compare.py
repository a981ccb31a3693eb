"""Side by side on one Redis: Conveyor (``redis://``) and every peer, in one run.

The plan, each phase one run at a time, the benchmark database flushed before each run:

1. **concurrency 10** — every (framework, scenario) at its reference setting
   (:mod:`benchmarks.peers.settings`), ``repeat`` times, interleaved (repetition k of
   every cell before repetition k+1 of any), so a slow drift on this shared machine hits
   everyone alike. The NOOP runs also time enqueueing: one at a time, from 100
   concurrent producers, and in bulk where the API has it.
2. **sweep** — every other candidate setting once, at a quarter of the jobs; the one
   with the highest steady-state throughput (the reference's: its median) is the
   framework's best for that scenario.
3. **best** — each best setting that is not the reference one, ``repeat`` times.
4. **latency** — jobs dispatched one at a time at a steady light rate to a running,
   idle worker; dispatch-to-start (start ≈ completion for a no-op) p50/p99.

Each run's worker is stopped after ``BUDGET_SECONDS`` (sweep: ``SWEEP_BUDGET_SECONDS``);
the rates of a run cut short are over the jobs done by then (marked † in the tables).
Every run is :func:`benchmarks.__main__.run_subprocess` (passed in): a fresh process from
the framework's venv, timed by :mod:`benchmarks.run_one`.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import redisctl, venvs
from benchmarks.framework import RunSpec
from benchmarks.peers.settings import Setting, reference, sweep
from benchmarks.report import DASH, Stat, markdown_table
from benchmarks.scenarios import CHUNK, SCENARIOS, SINGLE_CONCURRENCY, SINGLE_MAX

#: jobs in the strictly one-at-a-time enqueue phase (NOOP reference runs)
SERIAL_MAX = 2_000
#: sweep runs use this fraction of the scenario's jobs
SWEEP_FRACTION = 4
#: a run's worker is stopped after this long; its rates are over the jobs done by then
BUDGET_SECONDS = 30.0
SWEEP_BUDGET_SECONDS = 12.0
QUICK_BUDGET_SECONDS = 8.0
#: the latency scenario side by side: a light load every framework can keep up with
LATENCY_RATE = 200.0
LATENCY_SECONDS = 5.0

RunFn = Callable[[RunSpec, str], dict[str, Any]]


@dataclass(slots=True)
class Cell:
    """Every run of one (framework, scenario, setting)."""

    framework: str
    scenario: str
    setting: Setting
    roles: set[str]  # "c10", "best", "sweep"
    count: int
    runs: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def values(self, path: str) -> list[float]:
        out = []
        for run in self.runs:
            value: Any = run
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, int | float):
                out.append(float(value))
        return out

    def stat(self, path: str) -> Stat | None:
        return Stat.of(self.values(path))

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "framework": self.framework,
            "scenario": self.scenario,
            "setting": self.setting.label,
            "roles": sorted(self.roles),
            "jobs": self.count,
            "runs": len(self.runs),
            "errors": self.errors,
        }
        for name, path in METRICS.items():
            s = self.stat(path)
            if s is not None:
                out[name] = s.as_dict()
        return out


METRICS = {
    "throughput": "throughput",
    "steady_throughput": "steady_throughput",
    "serial_enqueue_rate": "serial_enqueue_rate",
    "single_enqueue_rate": "single_enqueue_rate",
    "bulk_enqueue_rate": "bulk_enqueue_rate",
    "fill_enqueue_rate": "fill_enqueue_rate",
    "peak_rss_mb": "peak_rss_mb",
    "cpu_us_per_job": "cpu_us_per_job",
    "worker_boot_seconds": "worker_boot_seconds",
    "latency_p50_ms": "latency_ms.p50",
    "latency_p99_ms": "latency_ms.p99",
    "latency_max_ms": "latency_ms.max",
}


@dataclass(slots=True)
class Comparison:
    frameworks: list[str]
    scenarios: list[str]
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    sweeps: dict[tuple[str, str], list[tuple[str, float | None]]] = field(default_factory=dict)
    best: dict[tuple[str, str], str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    redis: dict[str, str] = field(default_factory=dict)
    raw: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    private_redis: bool = False

    def cell(self, framework: str, scenario: str, setting: Setting, count: int) -> Cell:
        key = (framework, scenario, setting.label)
        if key not in self.cells:
            self.cells[key] = Cell(framework, scenario, setting, set(), count)
        return self.cells[key]

    def ref(self, framework: str, scenario: str) -> Cell | None:
        return self.cells.get((framework, scenario, reference(framework, scenario).label))

    def best_cell(self, framework: str, scenario: str) -> Cell | None:
        label = self.best.get((framework, scenario))
        return self.cells.get((framework, scenario, label)) if label else None


# -- running ---------------------------------------------------------------------------


def _spec(
    framework: str,
    scenario: str,
    setting: Setting,
    count: int,
    workdir: str,
    loop: str,
    *,
    enqueue_phases: bool,
    quick: bool,
    budget: float,
) -> RunSpec:
    sc = SCENARIOS[scenario]
    rate = LATENCY_RATE if sc.paced else sc.rate
    return RunSpec(
        framework=framework,
        target="redis",
        scenario=scenario,
        count=count,
        concurrency=setting.concurrency,
        process_pool=setting.process_pool,
        single_count=min(count, SINGLE_MAX) if enqueue_phases else 0,
        single_concurrency=SINGLE_CONCURRENCY,
        chunk=CHUNK,
        paced=sc.paced,
        rate=rate,
        workdir=workdir,
        result_path=str(Path(workdir, "result.json")),
        loop=loop,
        workers=setting.workers,
        pool=setting.pool,
        setting=setting.label,
        serial_count=min(count, SERIAL_MAX // (10 if quick else 1)) if enqueue_phases else 0,
        budget=0.0 if sc.paced else budget,
    )


def _headline(result: dict[str, Any]) -> str:
    if "error" in result:
        return "FAILED: " + (str(result["error"]).strip().splitlines() or ["?"])[-1][:300]
    if "latency_ms" in result:
        lat = result["latency_ms"]
        return f"latency p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms"
    steady = result.get("steady_throughput") or 0
    parts = [f"{result.get('throughput', 0):>9,.0f}/s (steady {steady:,.0f}/s)"]
    for key, name in (
        ("serial_enqueue_rate", "serial"),
        ("single_enqueue_rate", "100-conc"),
        ("bulk_enqueue_rate", "bulk"),
        ("fill_enqueue_rate", "fill"),
    ):
        if key in result:
            parts.append(f"{name} {result[key]:,.0f}/s")
    if result.get("peak_rss_mb"):
        parts.append(f"RSS {result['peak_rss_mb']:,.0f} MB")
    if result.get("truncated"):
        parts.append(f"[cut: {result.get('completed', 0):,} jobs done]")
    return "  ".join(parts)


def _run(
    comp: Comparison,
    run: RunFn,
    framework: str,
    scenario: str,
    setting: Setting,
    count: int,
    *,
    role: str,
    loop: str,
    quick: bool,
    settle: Callable[[], float | None],
    tag: str,
) -> dict[str, Any]:
    cell = comp.cell(framework, scenario, setting, count)
    cell.roles.add(role)
    python = str(venvs.interpreter(framework)) if framework in venvs.PEERS else None
    enqueue = scenario == "noop" and role == "c10"
    if quick:
        budget = QUICK_BUDGET_SECONDS
    else:
        budget = SWEEP_BUDGET_SECONDS if role == "sweep" else BUDGET_SECONDS
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as workdir:
        spec = _spec(
            framework,
            scenario,
            setting,
            count,
            workdir,
            loop,
            enqueue_phases=enqueue,
            quick=quick,
            budget=budget,
        )
        redisctl.flush()
        busy = settle()
        began = time.monotonic()
        result = run(spec, python or _own_python())
        result["wall_seconds"] = time.monotonic() - began
        result["busy_cores_before"] = busy
    redisctl.flush()
    if "error" in result:
        cell.errors.append(str(result["error"]))
    else:
        cell.runs.append(result)
    comp.raw.append(
        {
            "framework": framework,
            "scenario": scenario,
            "setting": setting.label,
            "role": role,
            "jobs": count,
            "result": result,
        }
    )
    print(
        f"{tag} {framework:<10} {scenario:<7} {setting.label:<16} {_headline(result)}", flush=True
    )
    return result


def _own_python() -> str:
    import sys

    return sys.executable


def prepare(
    frameworks: Sequence[str], probe: Callable[[str, list[str]], dict[str, Any]]
) -> Comparison:
    """Build the peers' venvs and probe every framework on ``redis``; drop what can't run."""
    comp = Comparison(frameworks=[], scenarios=[])
    why = redisctl.ping()
    comp.redis = redisctl.server_facts()
    for name in frameworks:
        if why is not None:
            comp.skipped[name] = why
            continue
        if name in venvs.PEERS:
            reason = venvs.ensure(name)
            if reason is not None:
                comp.skipped[name] = reason
                print(f"{name}: skipped: {reason}", flush=True)
                continue
        probed = probe(name, ["redis"])
        comp.versions[name] = probed.get("versions", {})
        reason = probed["unavailable"].get("redis")
        if reason is not None:
            comp.skipped[name] = reason
            print(f"{name}: skipped: {reason}", flush=True)
            continue
        comp.frameworks.append(name)
    return comp


def execute(
    comp: Comparison,
    scenarios: Sequence[str],
    run: RunFn,
    *,
    quick: bool,
    repeat: int,
    loop: str,
    do_sweep: bool,
    settle: Callable[[], float | None],
) -> Comparison:
    started = time.monotonic()
    comp.scenarios = list(scenarios)
    burst = [s for s in scenarios if not SCENARIOS[s].paced]
    paced = [s for s in scenarios if SCENARIOS[s].paced]
    kw: dict[str, Any] = {"loop": loop, "quick": quick, "settle": settle}

    def jobs(scenario: str) -> int:
        if SCENARIOS[scenario].paced:
            return int(LATENCY_RATE * LATENCY_SECONDS / (4 if quick else 1))
        return SCENARIOS[scenario].jobs(quick)

    for rep in range(repeat):
        for fw in comp.frameworks:
            for sc in burst:
                setting = reference(fw, sc)
                _run(
                    comp,
                    run,
                    fw,
                    sc,
                    setting,
                    jobs(sc),
                    role="c10",
                    tag=f"[c10 {rep + 1}/{repeat}]",
                    **kw,
                )
    for fw in comp.frameworks:
        for sc in burst:
            comp.best[(fw, sc)] = reference(fw, sc).label
    if do_sweep:
        for fw in comp.frameworks:
            for sc in burst:
                candidates = sweep(fw, sc)
                if len(candidates) < 2:
                    continue
                # the reference's score: its full runs' median (already measured)
                ref_cell = comp.ref(fw, sc)
                ref_steady = ref_cell.stat("steady_throughput") if ref_cell else None
                scores: list[tuple[str, float | None]] = [
                    (candidates[0].label, ref_steady.median if ref_steady else None)
                ]
                for setting in candidates[1:]:
                    result = _run(
                        comp,
                        run,
                        fw,
                        sc,
                        setting,
                        max(jobs(sc) // SWEEP_FRACTION, 1),
                        role="sweep",
                        tag="[sweep]",
                        **kw,
                    )
                    score = result.get("steady_throughput") or result.get("throughput")
                    scores.append((setting.label, None if "error" in result else score))
                comp.sweeps[(fw, sc)] = scores
                ok = [(s, label) for label, s in scores if s]
                if ok:
                    comp.best[(fw, sc)] = max(ok)[1]
        # sweep runs were quarter-size: their cells hold no full runs yet
        for key in [k for k, c in comp.cells.items() if c.roles == {"sweep"}]:
            del comp.cells[key]
        for cell in comp.cells.values():
            cell.roles.discard("sweep")
        for rep in range(repeat):
            for fw in comp.frameworks:
                for sc in burst:
                    label = comp.best[(fw, sc)]
                    if label == reference(fw, sc).label:
                        comp.cells[(fw, sc, label)].roles.add("best")
                        continue
                    setting = next(s for s in sweep(fw, sc) if s.label == label)
                    _run(
                        comp,
                        run,
                        fw,
                        sc,
                        setting,
                        jobs(sc),
                        role="best",
                        tag=f"[best {rep + 1}/{repeat}]",
                        **kw,
                    )
    for rep in range(repeat):
        for fw in comp.frameworks:
            for sc in paced:
                _run(
                    comp,
                    run,
                    fw,
                    sc,
                    reference(fw, sc),
                    jobs(sc),
                    role="c10",
                    tag=f"[latency {rep + 1}/{repeat}]",
                    **kw,
                )
    comp.seconds = time.monotonic() - started
    return comp


# -- reporting -------------------------------------------------------------------------


def _fmt(s: Stat | None, unit: str = "rate") -> str:
    if s is None:
        return "—"
    f = {"rate": "{:,.0f}", "ms": "{:.2f}", "us": "{:,.1f}", "s": "{:.2f}"}[unit]
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
            rows.append([cell.framework, setting, "failed", "", "", "", ""])
            continue
        cut = sum(1 for r in cell.runs if r.get("truncated"))
        mark = f" †{cut}" if cut else ""
        rows.append(
            [
                cell.framework,
                setting,
                _fmt(cell.stat("throughput")) + mark,
                _fmt(cell.stat("steady_throughput")),
                _fmt(cell.stat("worker_boot_seconds"), "s"),
                _fmt(cell.stat("cpu_us_per_job"), "us"),
                _mb(cell.stat("peak_rss_mb")),
            ]
        )
    return rows


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


def _median(cell: Cell | None, path: str) -> float | None:
    s = cell.stat(path) if cell is not None else None
    return s.median if s is not None else None


def targets_table(comp: Comparison, cpu_task_ms: float) -> list[list[str]]:
    """Issue 4's targets for Conveyor on Redis, from this run's medians."""
    if "conveyor" not in comp.frameworks:
        return []
    rows: list[list[str]] = []
    peers = [fw for fw in comp.frameworks if fw != "conveyor"]

    def check(name: str, value: float | None, ok: bool | None, goal: str) -> None:
        shown = "—" if value is None else (f"{value:,.2f}" if value < 100 else f"{value:,.0f}")
        rows.append([name, goal, shown, "—" if ok is None else ("✅" if ok else "❌")])

    noop = _median(comp.best_cell("conveyor", "noop"), "steady_throughput")
    check(
        "NOOP steady /s, one worker process",
        noop,
        None if noop is None else noop >= 25_000,
        "≥ 25,000",
    )
    fastest = max(
        (v for fw in peers if (v := _median(comp.best_cell(fw, "noop"), "steady_throughput"))),
        default=None,
    )
    if noop is not None and fastest:
        ratio = noop / fastest
        check("NOOP vs fastest peer (steady, best settings)", ratio, ratio >= 10, "≥ 10 times")
    io_cells = [c for c in comp.cells.values() if c.framework == "conveyor" and c.scenario == "io"]
    io1000 = next((c for c in io_cells if c.setting.concurrency == 1000 and c.runs), None)
    io = _median(io1000, "throughput")  # None: not measured at 1,000 (--quick, --no-sweep)
    check("IO /s at concurrency 1,000", io, None if io is None else io >= 20_000, "≥ 20,000")
    cpu = _median(comp.best_cell("conveyor", "cpu"), "throughput")
    if cpu is not None and cpu_task_ms > 0:
        ideal = 2 * 1000 / cpu_task_ms
        share = cpu / ideal * 100
        check(f"CPU: % of two cores' bare loop ({ideal:,.0f}/s)", share, share >= 85, "≥ 85 %")
    ref = comp.ref("conveyor", "noop")
    bulk = _median(ref, "bulk_enqueue_rate")
    check("bulk enqueue /s", bulk, None if bulk is None else bulk >= 100_000, "≥ 100,000")
    single = _median(ref, "single_enqueue_rate")
    check(
        "dispatch() from 100 coroutines /s",
        single,
        None if single is None else single >= 20_000,
        "≥ 20,000",
    )
    lat = comp.ref("conveyor", "latency")
    p50, p99 = _median(lat, "latency_ms.p50"), _median(lat, "latency_ms.p99")
    check("latency p50 ms", p50, None if p50 is None else p50 <= 2, "≤ 2")
    check("latency p99 ms", p99, None if p99 is None else p99 <= 10, "≤ 10")
    rss = _median(ref, "peak_rss_mb")
    leanest = min(
        (v for fw in peers if (v := _median(comp.ref(fw, "noop"), "peak_rss_mb"))), default=None
    )
    if rss is not None and leanest is not None:
        check(
            f"worker RSS MB, NOOP at c10 (leanest peer {leanest:,.0f})",
            rss,
            rss <= leanest,
            "≤ leanest peer",
        )
    return rows


def sweep_rows(comp: Comparison) -> list[list[str]]:
    rows = []
    for (fw, sc), scores in comp.sweeps.items():
        shown = ", ".join(
            f"{label}: {'failed' if s is None else f'{s:,.0f}'}" for label, s in scores
        )
        rows.append([fw, sc, shown, comp.best[(fw, sc)]])
    return rows


def markdown(comp: Comparison, cpu_task_ms: float, repeat: int) -> str:
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
        "- *setting*: `cN` = N jobs in flight per worker process; `K\u00d7` = K worker processes; "
        "then the framework's executor; `+2p` = a process pool of 2. Each framework's first "
        "row is concurrency 10 (the setting of AsyncTasQ's published comparison); **best** "
        "marks the winner of the sweep (below) by steady-state throughput, measured like the "
        "c10 row.",
        "- *throughput*: jobs ÷ (last completion - worker start; for a peer, when its first "
        "worker process was ready: *worker boot* is from spawning it until then); *steady*: "
        "(jobs - 1) ÷ (last - first completion).",
        "- *peak RSS*: the worker's process tree (`VmHWM` of each process, summed).",
        f"- †N: N of the runs were stopped after {BUDGET_SECONDS:.0f} s (the job count would "
        "have taken much longer); their rates are over the jobs completed by then.",
        "",
    ]
    titles = {s.name: s.title for s in SCENARIOS.values()}
    for sc in comp.scenarios:
        if SCENARIOS[sc].paced:
            continue
        rows = throughput_table(comp, sc)
        if rows:
            parts += [
                f"### {sc.upper()}: {titles[sc]}",
                "",
                markdown_table(THROUGHPUT_HEADERS, rows),
                "",
            ]
    rows = enqueue_table(comp)
    if rows:
        parts += [
            "### Enqueue (NOOP job)",
            "",
            markdown_table(ENQUEUE_HEADERS, rows),
            "",
            f"One at a time: {SERIAL_MAX:,} jobs, each awaited before the next (a sync "
            f"framework's own blocking call). 100 concurrent: {SINGLE_MAX:,} jobs from 100 "
            "coroutines (sync frameworks: 100 threads). Bulk: the framework's bulk API in "
            f"chunks of {CHUNK:,}.",
            "",
        ]
    rows = latency_table(comp)
    if rows:
        parts += [
            "### Dispatch-to-start latency",
            "",
            markdown_table(LATENCY_HEADERS, rows),
            "",
            f"{LATENCY_RATE * LATENCY_SECONDS:,.0f} no-op jobs dispatched one at a time at "
            f"{LATENCY_RATE:,.0f}/s to an "
            "idle, running worker; latency = the task's stamp - the moment its dispatch began "
            "(same clock, `CLOCK_MONOTONIC`, across processes). Framework defaults otherwise "
            "(arq polls every 0.5 s, AsyncTasQ sleeps 0.1 s after an empty poll).",
            "",
        ]
    rows = targets_table(comp, cpu_task_ms)
    if rows:
        parts += [
            "### Conveyor's targets (issue 4)",
            "",
            markdown_table(["target", "goal", "measured", "met"], rows),
            "",
        ]
    rows = sweep_rows(comp)
    if rows:
        parts += [
            "### Sweep (steady jobs/s: c10 its median; others one run of a quarter of the jobs)",
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
    failures = [(c, e) for c in comp.cells.values() for e in c.errors]
    if failures:
        parts += ["### Failed runs", ""]
        parts += [
            f"- {c.framework}/{c.scenario}/{c.setting.label}: {e.strip().splitlines()[-1][:400]}"
            for c, e in failures
        ]
        parts.append("")
    return "\n".join(parts)


def as_json(comp: Comparison, cpu_task_ms: float) -> dict[str, Any]:
    return {
        "frameworks": comp.frameworks,
        "redis": comp.redis,
        "seconds": comp.seconds,
        "skipped": comp.skipped,
        "versions": comp.versions,
        "best": {f"{fw}/{sc}": label for (fw, sc), label in comp.best.items()},
        "sweeps": {f"{fw}/{sc}": scores for (fw, sc), scores in comp.sweeps.items()},
        "cells": [c.summary() for c in comp.cells.values()],
        "targets": [
            dict(zip(["target", "goal", "measured", "met"], r, strict=True))
            for r in targets_table(comp, cpu_task_ms)
        ],
        "runs": comp.raw,
    }


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


def chart(path: Path, comp: Comparison, machine: dict[str, Any]) -> None:
    """``latest.png``: throughput per scenario, enqueue, latency and RSS, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fws = list(comp.frameworks)
    # (title, x label, log scale, frameworks in order, series)
    panels: list[tuple[str, str, bool, list[str], list[tuple[str, list[Stat | None], str]]]] = []

    def ordered(key: Callable[[str], float | None], reverse: bool = True) -> list[str]:
        return sorted(fws, key=lambda fw: (key(fw) or 0.0) * (-1 if reverse else 1))

    for sc in (s for s in comp.scenarios if not SCENARIOS[s].paced):
        order = ordered(lambda fw, sc=sc: _median(comp.best_cell(fw, sc), "steady_throughput"))
        best = [comp.best_cell(fw, sc) for fw in order]
        ref = [comp.ref(fw, sc) for fw in order]
        jobs = next((c.count for c in ref if c is not None), 0)
        series = [
            ("best setting", _stats(best, "throughput"), RED),
            ("concurrency 10", _stats(ref, "throughput"), BLUE),
        ]
        panels.append(
            (f"{sc.upper()}: {jobs:,} jobs", "jobs/s, start→last (log)", True, order, series)
        )
    if "noop" in comp.scenarios:
        order = ordered(lambda fw: _median(comp.ref(fw, "noop"), "single_enqueue_rate"))
        cells = [comp.ref(fw, "noop") for fw in order]
        series = [
            ("100 concurrent", _stats(cells, "single_enqueue_rate"), RED),
            ("bulk API", _stats(cells, "bulk_enqueue_rate"), GREEN),
            ("one at a time", _stats(cells, "serial_enqueue_rate"), BLUE),
        ]
        panels.append(("Enqueue (no-op job)", "jobs/s (log)", True, order, series))
    if any(SCENARIOS[s].paced for s in comp.scenarios):
        order = ordered(lambda fw: _median(comp.ref(fw, "latency"), "latency_ms.p50"), False)
        cells = [comp.ref(fw, "latency") for fw in order]
        series = [
            ("p50", _stats(cells, "latency_ms.p50"), RED),
            ("p99", _stats(cells, "latency_ms.p99"), BLUE),
        ]
        title = f"Dispatch-to-start latency at {LATENCY_RATE:,.0f} jobs/s"
        panels.append((title, "ms (log)", True, order, series))
    if "noop" in comp.scenarios:
        order = ordered(lambda fw: _median(comp.ref(fw, "noop"), "peak_rss_mb"), False)
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
        _hbars(ax, order, series)
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
        f"Task queues side by side on Redis {comp.redis.get('redis_version', '')}, one worker "
        f"each - {machine['cpu']}, {machine['cores']} cores - {machine['date']} "
        f"(median of the runs, whiskers min{DASH}max)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


__all__ = ["Comparison", "as_json", "chart", "execute", "markdown", "prepare"]
