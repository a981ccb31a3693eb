"""Running a comparison: which runs, in which order, with how many jobs.

Every run is :func:`benchmarks.__main__.run_subprocess` (passed in): a fresh process from
the framework's venv, timed by :mod:`benchmarks.run_one`, on an empty broker
(:mod:`benchmarks.compare.stores`).
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import bare, venvs
from benchmarks.compare.model import Comparison, Entrant
from benchmarks.compare.stores import Store
from benchmarks.framework import RunSpec
from benchmarks.peers.settings import Setting
from benchmarks.scenarios import CHUNK, SCENARIOS, SINGLE_CONCURRENCY

#: jobs in the strictly one-at-a-time enqueue phase (NOOP reference runs)
SERIAL_MAX = 1_000
#: jobs in the 100-concurrent-producers enqueue phase (NOOP reference runs)
SINGLE_COUNT = 5_000
#: sweep runs use this fraction of the scenario's jobs
SWEEP_FRACTION = 4
#: a run's worker is stopped after this long; its rates are over the jobs done by then
BUDGET_SECONDS = 2.5
SWEEP_BUDGET_SECONDS = 1.5
QUICK_BUDGET_SECONDS = 2.0
#: the latency scenario side by side: a light load every framework can keep up with
LATENCY_RATE = 200.0
LATENCY_SECONDS = 2.5
#: how long the two-core bare loop runs before each CPU run (:mod:`benchmarks.bare`)
BARE_SECONDS = 1.0
#: scenarios measured at the concurrency-10 reference setting as well as at the best one
#: (NOOP: it also times enqueueing); the others report the sweep's best only, c10 being
#: one of its candidates
REFERENCED = frozenset({"noop"})

RunFn = Callable[[RunSpec, str], dict[str, Any]]
Probe = Callable[[str, list[str]], dict[str, Any]]


def _spec(
    entrant: Entrant,
    scenario: str,
    setting: Setting,
    count: int,
    workdir: str,
    loop: str,
    *,
    enqueue_phases: bool,
    quick: bool,
    budget: float,
    database: str,
) -> RunSpec:
    sc = SCENARIOS[scenario]
    rate = LATENCY_RATE if sc.paced else sc.rate
    return RunSpec(
        framework=entrant.framework,
        target=entrant.target,
        scenario=scenario,
        count=count,
        concurrency=setting.concurrency,
        process_pool=setting.process_pool,
        single_count=SINGLE_COUNT // (10 if quick else 1) if enqueue_phases else 0,
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
        serial_count=SERIAL_MAX // (10 if quick else 1) if enqueue_phases else 0,
        budget=0.0 if sc.paced else budget,
        database=database,
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
        parts.append(f"[cut: {result.get('completed', 0):,} of {result.get('jobs', 0):,}]")
    return "  ".join(parts)


class Runner:
    """Runs one comparison's cells, one run at a time."""

    def __init__(
        self,
        comp: Comparison,
        store: Store,
        run: RunFn,
        *,
        quick: bool,
        loop: str,
        settle: Callable[[], float | None],
    ) -> None:
        self.comp = comp
        self.store = store
        self.run_fn = run
        self.quick = quick
        self.loop = loop
        self.settle = settle

    def budget(self, role: str) -> float:
        if self.quick:
            return QUICK_BUDGET_SECONDS
        return SWEEP_BUDGET_SECONDS if role == "sweep" else BUDGET_SECONDS

    def full(self, scenario: str) -> int:
        if SCENARIOS[scenario].paced:
            return int(LATENCY_RATE * LATENCY_SECONDS / (4 if self.quick else 1))
        return SCENARIOS[scenario].jobs(self.quick)

    def jobs(self, scenario: str, role: str) -> int:
        """The scenario's jobs; a quarter of them for the sweep."""
        full = self.full(scenario)
        if role == "sweep" and not SCENARIOS[scenario].paced:
            return max(full // SWEEP_FRACTION, 1)
        return full

    def run(self, label: str, scenario: str, setting: Setting, *, role: str, tag: str) -> dict:
        comp = self.comp
        entrant = comp.entrants[label]
        count = self.jobs(scenario, role)
        cell = comp.cell(label, scenario, setting, self.full(scenario))
        cell.roles.add(role)
        framework = entrant.framework
        python = str(venvs.interpreter(framework)) if framework in venvs.PEERS else sys.executable
        enqueue = scenario == "noop" and role == "c10"
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as workdir:
            database = self.store.fresh(entrant.target)
            try:
                spec = _spec(
                    entrant,
                    scenario,
                    setting,
                    count,
                    workdir,
                    self.loop,
                    enqueue_phases=enqueue,
                    quick=self.quick,
                    budget=self.budget(role),
                    database=database,
                )
                busy = self.settle()
                # the CPU target is a share of what two cores do for the body now
                bare_rate = bare.two_core_rate(BARE_SECONDS) if scenario == "cpu" else None
                began = time.monotonic()
                result = self.run_fn(spec, python)
                result["wall_seconds"] = time.monotonic() - began
                if bare_rate is not None and "error" not in result:
                    result["bare_rate"] = bare_rate
                    result["bare_share"] = result.get("throughput", 0.0) / bare_rate * 100
                result["busy_cores_before"] = busy
                result["jobs"] = count
            finally:
                self.store.clean(entrant.target, database)
        if "error" in result:
            cell.errors.append(str(result["error"]))
        else:
            cell.runs.append(result)
        comp.raw.append(
            {
                "framework": label,
                "scenario": scenario,
                "setting": setting.label,
                "role": role,
                "jobs": count,
                "result": result,
            }
        )
        print(
            f"{tag} {label:<14} {scenario:<7} {setting.label:<16} {_headline(result)}", flush=True
        )
        return result


def prepare(
    title: str,
    entrants: Sequence[Entrant],
    store: Store,
    probe: Probe,
) -> Comparison:
    """Build the peers' venvs and probe every entrant on its target; drop what can't run."""
    comp = Comparison(title=title, frameworks=[], scenarios=[])
    reachable: dict[str, str | None] = {}
    for entrant in entrants:
        target = entrant.target
        if target not in reachable:
            reachable[target] = store.ping(target)
            if reachable[target] is None:
                comp.servers[target] = store.facts(target)
        why = reachable[target]
        if why is None and entrant.framework in venvs.PEERS:
            why = venvs.ensure(entrant.framework)
        if why is None:
            probed = probe(entrant.framework, [target])
            comp.versions[entrant.label] = probed.get("versions", {})
            why = probed["unavailable"].get(target)
        if why is not None:
            comp.skipped[entrant.label] = why
            print(f"{entrant.label}: skipped: {why}", flush=True)
            continue
        comp.frameworks.append(entrant.label)
        comp.entrants[entrant.label] = entrant
    store.sweep_leftovers({comp.entrants[label].target for label in comp.frameworks})
    return comp


def execute(
    comp: Comparison,
    store: Store,
    scenarios: Sequence[str],
    run: RunFn,
    *,
    quick: bool,
    repeat: int,
    loop: str,
    do_sweep: bool,
    settle: Callable[[], float | None],
) -> Comparison:
    """The phases of :mod:`benchmarks.compare`, one run at a time."""
    started = time.monotonic()
    comp.scenarios = list(scenarios)
    burst = [s for s in scenarios if not SCENARIOS[s].paced]
    paced = [s for s in scenarios if SCENARIOS[s].paced]
    runner = Runner(comp, store, run, quick=quick, loop=loop, settle=settle)

    referenced = [s for s in burst if s in REFERENCED or not do_sweep]
    for rep in range(repeat):
        for fw in comp.frameworks:
            for sc in referenced:
                setting = comp.reference(fw, sc)
                runner.run(fw, sc, setting, role="c10", tag=f"[c10 {rep + 1}/{repeat}]")
    for fw in comp.frameworks:
        for sc in burst:
            comp.best[(fw, sc)] = comp.reference(fw, sc).label
    if do_sweep:
        _sweep(comp, runner, burst)
        for rep in range(repeat):
            for fw in comp.frameworks:
                for sc in burst:
                    label = comp.best[(fw, sc)]
                    if sc in REFERENCED and label == comp.reference(fw, sc).label:
                        comp.cells[(fw, sc, label)].roles.add("best")
                        continue
                    setting = next(s for s in comp.settings(fw, sc) if s.label == label)
                    runner.run(fw, sc, setting, role="best", tag=f"[best {rep + 1}/{repeat}]")
    for rep in range(repeat):
        for fw in comp.frameworks:
            for sc in paced:
                runner.run(
                    fw, sc, comp.reference(fw, sc), role="c10", tag=f"[latency {rep + 1}/{repeat}]"
                )
    comp.seconds = time.monotonic() - started
    return comp


def _sweep(comp: Comparison, runner: Runner, burst: Sequence[str]) -> None:
    """Every candidate once, at a quarter of the jobs and a shorter budget (a referenced
    scenario's c10: its full runs' median); the best steady rate wins."""
    for fw in comp.frameworks:
        for sc in burst:
            candidates = comp.settings(fw, sc)
            ref_cell = comp.ref(fw, sc) if sc in REFERENCED else None
            if ref_cell is not None and len(candidates) < 2:
                continue
            scores: list[tuple[str, float | None]] = []
            if ref_cell is not None:
                ref_steady = ref_cell.stat("steady_throughput")
                scores.append((candidates[0].label, ref_steady.median if ref_steady else None))
                candidates = candidates[1:]
            for setting in candidates:
                result = runner.run(fw, sc, setting, role="sweep", tag="[sweep]")
                score = result.get("steady_throughput") or result.get("throughput")
                scores.append((setting.label, None if "error" in result else score))
            comp.sweeps[(fw, sc)] = scores
            ok = [(s, label) for label, s in scores if s]
            if ok:
                comp.best[(fw, sc)] = max(ok)[1]
    # sweep runs were short: their cells hold no full runs yet
    for key in [k for k, c in comp.cells.items() if c.roles == {"sweep"}]:
        del comp.cells[key]
    for cell in comp.cells.values():
        cell.roles.discard("sweep")
