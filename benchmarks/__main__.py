"""``python -m benchmarks``: run the scenarios, print a table, write ``results/latest.*``.

Each measured run is a fresh subprocess (:mod:`benchmarks.run_one`) with a fresh broker,
so runs don't share warmed caches, leaked tasks or heap; this process only starts
runs one after another (never two at once), samples their process tree's memory,
and writes the report. See ``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import compare, redisctl, report
from benchmarks import framework as fw_mod
from benchmarks.framework import RunSpec
from benchmarks.report import Group
from benchmarks.scenarios import CHUNK, DEFAULT, SCENARIOS, SINGLE_CONCURRENCY, SINGLE_MAX, Scenario
from benchmarks.sysinfo import TreeSampler, machine, package_versions, wait_for_quiet

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
RUN_TIMEOUT = 900.0
QUIET_CORES = 0.25  # "the machine is quiet": other processes use less CPU than this


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small counts, one run each: a smoke test")
    p.add_argument("--repeat", type=int, default=None, help="runs per cell (default 3; quick: 1)")
    p.add_argument("--drivers", type=_csv, default=["memory", "sqlite"], help="memory,sqlite")
    p.add_argument("--scenarios", type=_csv, default=list(DEFAULT), help=f"{','.join(SCENARIOS)}")
    p.add_argument(
        "--frameworks", type=_csv, default=["conveyor"], help=",".join(fw_mod.FRAMEWORKS)
    )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop of the runs; auto (default): uvloop when installed, as `conveyor worker`",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="also pyinstrument the worker phase of one NOOP run per driver (results/profile-*)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="before each run, wait up to this long for other processes to use under "
        "0.25 cores (each run records how busy the machine was); default 30 (--quick: 2)",
    )
    p.add_argument("--no-codec", action="store_true", help="skip the codec comparison")
    p.add_argument(
        "--peers",
        type=_csv,
        default=["conveyor", *fw_mod.PEERS],
        help="side by side on Redis: these frameworks (default: conveyor and every peer: "
        f"{','.join(fw_mod.PEERS)}); 'none' skips the comparison",
    )
    p.add_argument(
        "--sql",
        type=_csv,
        default=["conveyor", *fw_mod.SQL_PEERS],
        help="side by side on PostgreSQL and MariaDB: conveyor (its postgresql:// and "
        "mysql:// drivers) and these peers (default: conveyor,"
        f"{','.join(fw_mod.SQL_PEERS)}); 'none' skips it",
    )
    p.add_argument(
        "--no-sweep",
        action="store_true",
        help="side by side: measure concurrency 10 only, not each framework's best setting",
    )
    p.add_argument(
        "--redis-url",
        default=redisctl.url(),
        help=f"the benchmark's own Redis database, flushed before every run (and db+1 for "
        f"scratch jobs); default {redisctl.url()} (${redisctl.ENV})",
    )
    p.add_argument(
        "--private-redis",
        action="store_true",
        help="side by side: start a redis-server of our own on a free port for the run "
        "(undisturbed by other tests' CLIENT KILLs and restarts) instead of --redis-url",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="where latest.{md,json,png} go")
    args = p.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    if args.loop == "auto":
        args.loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.settle is None:
        args.settle = 2.0 if args.quick else 30.0
    if args.peers == ["none"]:
        args.peers = []
    if args.sql == ["none"]:
        args.sql = []
    unknown = [f for f in args.peers if f not in fw_mod.FRAMEWORKS]
    if unknown:
        p.error(f"unknown framework(s) {', '.join(unknown)}; known: {', '.join(fw_mod.FRAMEWORKS)}")
    os.environ[redisctl.ENV] = args.redis_url  # the runs and the peers' workers inherit it
    return args


def _probe(name: str, targets: list[str]) -> dict[str, Any]:
    python = fw_mod.FRAMEWORKS[name].interpreter(ROOT)
    if not Path(python).exists():
        return {"unavailable": {t: f"no interpreter at {python}" for t in targets}, "versions": {}}
    out = subprocess.run(
        [python, "-m", "benchmarks.run_one", "--probe", name, *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        reason = (out.stderr.strip().splitlines() or ["probe failed"])[-1]
        return {"unavailable": dict.fromkeys(targets, reason), "versions": {}}
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _spec(
    name: str, target: str, scenario: Scenario, quick: bool, workdir: str, loop: str
) -> RunSpec:
    count = scenario.jobs(quick)
    return RunSpec(
        framework=name,
        target=target,
        scenario=scenario.name,
        count=count,
        concurrency=scenario.concurrency,
        process_pool=scenario.process_pool,
        single_count=0 if scenario.paced else min(count, SINGLE_MAX),
        single_concurrency=SINGLE_CONCURRENCY,
        chunk=CHUNK,
        paced=scenario.paced,
        rate=scenario.rate,
        workdir=workdir,
        result_path=str(Path(workdir, "result.json")),
        loop=loop,
    )


def run_subprocess(spec: RunSpec, python: str) -> dict[str, Any]:
    """Run one spec in a new process; sample its children's peak RSS while it runs."""
    spec_path = Path(spec.workdir, "spec.json")
    spec.dump(spec_path)
    if spec.target == "redis":
        redisctl.flush()  # the benchmark's own database only
    proc = subprocess.Popen(
        [python, "-m", "benchmarks.run_one", str(spec_path)], cwd=ROOT, start_new_session=True
    )
    sampler = TreeSampler(proc.pid)
    deadline = time.monotonic() + RUN_TIMEOUT
    while proc.poll() is None:
        sampler.sample()
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return {"error": f"timed out after {RUN_TIMEOUT:.0f}s"}
        time.sleep(0.1)
    result_path = Path(spec.result_path)
    if not result_path.exists():
        return {"error": f"the run exited with code {proc.returncode} and no result"}
    result: dict[str, Any] = json.loads(result_path.read_text())
    worker_kb = result.get("worker_peak_rss_kb")
    result["children_peak_rss_kb"] = sampler.total_kb
    if result.get("external_worker") and worker_kb is not None:
        result["peak_rss_mb"] = worker_kb / 1024  # the worker processes' tree, measured by the run
    elif worker_kb is not None:
        result["peak_rss_mb"] = (worker_kb + sampler.total_kb) / 1024
    return result


def _describe(result: dict[str, Any]) -> str:
    busy = result.get("busy_cores_before")
    note = "" if busy is None or busy < QUIET_CORES else f"  [machine busy: {busy:.1f} cores]"
    return _outcome(result) + note


def _outcome(result: dict[str, Any]) -> str:
    if "error" in result:
        return "FAILED: " + str(result["error"]).strip().splitlines()[-1]
    if "latency_ms" in result:
        lat = result["latency_ms"]
        return f"latency p50 {lat['p50']:.2f} ms  p99 {lat['p99']:.2f} ms"
    return (
        f"enqueue {result.get('bulk_enqueue_rate', 0):>9,.0f}/s bulk "
        f"{result.get('single_enqueue_rate', 0):>8,.0f}/s single   "
        f"throughput {result.get('throughput', 0):>9,.0f}/s "
        f"(steady {result.get('steady_throughput') or 0:,.0f}/s)"
    )


def _cpu_task_ms() -> float:
    from benchmarks.tasks import burn

    burn()
    best = float("inf")
    for _ in range(5):  # best of 5: the machine may be shared
        started = time.perf_counter()
        for _ in range(10):
            burn()
        best = min(best, (time.perf_counter() - started) / 10)
    return best * 1000


def _profile(name: str, target: str, out: Path, loop: str, settle: float) -> None:
    """One NOOP run under pyinstrument, and one under py-spy when it is installed."""
    from benchmarks import profiling

    python = fw_mod.FRAMEWORKS[name].interpreter(ROOT)
    spy = Path(python).with_name("py-spy")
    profilers = ["pyinstrument"] + (["py-spy"] if spy.exists() or shutil.which("py-spy") else [])
    for profiler in profilers:
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as workdir:
            if settle > 0:
                wait_for_quiet(QUIET_CORES, settle)
            spec = _spec(name, target, SCENARIOS["noop"], False, workdir, loop)
            suffix = "" if profiler == "pyinstrument" else "-threads"
            path = out / f"profile-noop-{target}{suffix}"
            spec = dataclasses.replace(
                spec, profile_path=str(path), profiler=profiler, single_count=0
            )
            result = run_subprocess(spec, python)
        print(f"  {profiler} {target}/noop: {_outcome(result)}")
        raw = path.with_suffix(".raw")
        if profiler == "py-spy" and raw.exists():
            text = profiling.summarize(raw, seconds=result.get("worker_run_seconds"))
            path.with_suffix(".txt").write_text(text + "\n")
            raw.unlink()
            print(f"    -> {path}.txt")
        elif profiler == "pyinstrument":
            print(f"    -> {path}.html, {path}.txt")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    began = time.monotonic()
    args = parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    scenarios = [SCENARIOS[s] for s in args.scenarios]
    facts = machine(ROOT)
    print(f"{facts['cpu']}, {facts['cores']} cores, {facts['python']}, {facts['date']}")

    skipped: dict[str, str] = {}
    versions = package_versions(["msgpack", "matplotlib", "pyinstrument", "rich"])
    plan: list[tuple[str, str]] = []
    for name in args.frameworks:
        if name not in fw_mod.FRAMEWORKS:
            print(f"unknown framework {name!r}; known: {', '.join(fw_mod.FRAMEWORKS)}")
            return 2
        probe = _probe(name, args.drivers)
        versions |= probe["versions"]
        for target in args.drivers:
            reason = probe["unavailable"].get(target)
            if reason is None:
                plan.append((name, target))
            else:
                label = target if name == "conveyor" else f"{name}/{target}"
                skipped[label] = reason
                print(f"{label}: skipped: {reason}")

    cpu_ms = _cpu_task_ms() if any(s.name == "cpu" for s in scenarios) else 0.0
    groups: dict[tuple[str, str, str], Group] = {}
    for name, target in plan:
        for scenario in scenarios:
            groups[(name, target, scenario.name)] = Group(
                name, target, scenario.name, scenario.jobs(args.quick), scenario.concurrency
            )
    raw: list[dict[str, Any]] = []
    for rep in range(args.repeat):
        for name, target in plan:  # interleaved, so a slow drift hits every cell alike
            python = fw_mod.FRAMEWORKS[name].interpreter(ROOT)
            for scenario in scenarios:
                with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as workdir:
                    spec = _spec(name, target, scenario, args.quick, workdir, args.loop)
                    busy = wait_for_quiet(QUIET_CORES, args.settle) if args.settle > 0 else None
                    result = run_subprocess(spec, python)
                    result["busy_cores_before"] = busy
                group = groups[(name, target, scenario.name)]
                if "error" in result:
                    group.errors.append(str(result["error"]))
                else:
                    group.runs.append(result)
                raw.append({"framework": name, "target": target, "scenario": scenario.name,
                            "repeat": rep, "result": result})  # fmt: skip
                print(
                    f"[{rep + 1}/{args.repeat}] {target:<7} {scenario.name:<8} {_describe(result)}"
                )

    codecs: list[dict[str, Any]] = []
    if not args.no_codec:
        from benchmarks import codec_bench

        codecs = codec_bench.run(quick=args.quick)

    if args.profile:
        for name, target in plan:
            _profile(name, target, out, args.loop, args.settle)

    comparison = _compare(args)
    sql = _compare_sql(args)

    ordered = list(groups.values())
    report.print_tables(ordered, codecs, skipped)
    config = {
        "argv": " ".join(argv),
        "quick": args.quick,
        "repeat": args.repeat,
        "loop": args.loop,
        "chunk": CHUNK,
        "single_concurrency": SINGLE_CONCURRENCY,
        "single_count": f"min(jobs, {SINGLE_MAX:,})",
        "cpu_task_ms": cpu_ms,
        "settle": args.settle,
        "quiet_cores": QUIET_CORES,
        "scenarios": {s.name: s.title for s in scenarios},
    }
    sections: list[str] = []
    if comparison is not None:
        sections.append(compare.redis_section(comparison, cpu_ms, args.repeat))
    if sql is not None:
        sections.append(compare.sql_section(sql, args.repeat))
    minutes = (time.monotonic() - began) / 60
    sections.append(_duration(minutes, argv, comparison, sql))
    report.write_json(
        out / "latest.json",
        {
            "machine": facts,
            "versions": versions,
            "config": config,
            "skipped": skipped,
            "summary": [g.summary() for g in ordered],
            "codecs": codecs,
            "runs": raw,
            "side_by_side": compare.as_json(comparison, compare.redis_targets(comparison, cpu_ms))
            if comparison
            else None,
            "side_by_side_sql": compare.as_json(sql, compare.sql_targets(sql)) if sql else None,
            "minutes": minutes,
        },
    )
    report.write_markdown(
        out / "latest.md",
        machine=facts,
        versions=versions,
        config=config,
        groups=ordered,
        codecs=codecs,
        skipped=skipped,
        sections=sections,
    )
    side_by_side = comparison is not None and any(c.runs for c in comparison.cells.values())
    if side_by_side:
        assert comparison is not None
        version = comparison.redis.get("redis_version", "")
        compare.chart(out / "latest.png", comparison, facts, f"Redis {version}".strip())
    if sql is not None and any(c.runs for c in sql.cells.values()):
        compare.chart(out / "latest-sql.png", sql, facts, "PostgreSQL and MariaDB")
    if any(g.runs for g in ordered):  # Conveyor's drivers: the chart, or beside it
        report.write_chart(
            out / ("latest-drivers.png" if side_by_side else "latest.png"), ordered, facts
        )
    print(f"wrote {out / 'latest.md'}, latest.json, latest*.png")
    for comp in (comparison, sql):
        if comp is not None:
            print(f"side by side on {comp.title}: {comp.seconds / 60:.1f} min")
    print(f"all: {minutes:.1f} min")
    conveyor_failed = any(
        c.errors
        for comp in (comparison, sql)
        if comp is not None
        for c in comp.cells.values()
        if comp.entrants[c.framework].framework == "conveyor"
    )
    return 1 if conveyor_failed or any(g.errors for g in ordered) else 0


def _duration(
    minutes: float,
    argv: list[str],
    redis: compare.Comparison | None,
    sql: compare.Comparison | None,
) -> str:
    parts = [f"`python -m benchmarks {' '.join(argv)}`".replace(" `", "`")]
    if redis is not None:
        parts.append(f"side by side on Redis {redis.seconds / 60:.1f} min")
    if sql is not None:
        parts.append(f"on PostgreSQL and MariaDB {sql.seconds / 60:.1f} min")
    return (
        f"## Duration\n\nThis whole run took {minutes:.1f} min ("
        + "; ".join(parts)
        + "; the rest: Conveyor's drivers alone, the codecs).\n"
    )


def _settle(args: argparse.Namespace) -> Callable[[], float | None]:
    """Before each side-by-side run: a short wait for a quiet machine (recorded)."""
    settle = 0.0 if args.quick else min(args.settle, 1.0)

    def quiet() -> float | None:
        return wait_for_quiet(QUIET_CORES, settle, window=0.2) if settle > 0 else None

    return quiet


def _compare(args: argparse.Namespace) -> compare.Comparison | None:
    """Conveyor on redis:// and the peers, side by side (:mod:`benchmarks.compare`)."""
    if not args.peers:
        return None
    server = redisctl.PrivateServer() if args.private_redis else None
    if server is not None:
        os.environ[redisctl.ENV] = server.start()
        print(f"private Redis at {redisctl.url()}")
    try:
        entrants = [compare.Entrant(name, name, "redis") for name in args.peers]
        store = compare.RedisStore()
        comparison = compare.prepare("Redis", entrants, store, _probe)
        comparison.private_redis = server is not None
        if not comparison.frameworks:
            return comparison
        return compare.execute(
            comparison,
            store,
            args.scenarios,
            run_subprocess,
            quick=args.quick,
            repeat=args.repeat,
            loop=args.loop,
            do_sweep=not (args.no_sweep or args.quick),
            settle=_settle(args),
        )
    finally:
        if server is not None:
            server.stop()
            os.environ[redisctl.ENV] = args.redis_url


def _compare_sql(args: argparse.Namespace) -> compare.Comparison | None:
    """Conveyor on postgresql:// beside Procrastinate, and on mysql:// (MariaDB)."""
    if not args.sql:
        return None
    entrants = [e for e in compare.SQL_ENTRANTS if e.label in args.sql or e.framework in args.sql]
    store = compare.SqlStore()
    comparison = compare.prepare("PostgreSQL and MariaDB", entrants, store, _probe)
    scenarios = [s for s in args.scenarios if s in compare.SQL_SCENARIOS]
    if not comparison.frameworks or not scenarios:
        return comparison
    return compare.execute(
        comparison,
        store,
        scenarios,
        run_subprocess,
        quick=args.quick,
        repeat=args.repeat,
        loop=args.loop,
        do_sweep=not (args.no_sweep or args.quick),
        settle=_settle(args),
    )


if __name__ == "__main__":
    sys.exit(main())
