"""Conveyor's targets, checked against a comparison's medians.

- issue 4, on Redis: NOOP ≥ 25,000/s and ≥ 10 times the fastest peer, IO, CPU, enqueue,
  latency, memory;
- issue 5, on SQL: PostgreSQL ≥ 10,000 no-op jobs/s and ≥ 10 times Procrastinate, MariaDB
  ≥ 5,000/s, bulk enqueue ≥ 50,000/s on both.

Every rate is from one worker process; "NOOP /s" is the best setting's steady rate, as in
the throughput tables.
"""

from __future__ import annotations

from benchmarks.compare.model import Comparison, median

HEADERS = ["target", "goal", "measured", "met"]


class _Rows:
    def __init__(self) -> None:
        self.rows: list[list[str]] = []

    def check(self, name: str, value: float | None, ok: bool | None, goal: str) -> None:
        shown = "—" if value is None else (f"{value:,.2f}" if value < 100 else f"{value:,.0f}")
        self.rows.append([name, goal, shown, "—" if ok is None else ("✅" if ok else "❌")])

    def at_least(self, name: str, value: float | None, goal: float, shown: str) -> None:
        self.check(name, value, None if value is None else value >= goal, shown)


def redis_targets(comp: Comparison, cpu_task_ms: float) -> list[list[str]]:
    """Issue 4's targets for Conveyor on Redis, from this run's medians."""
    if "conveyor" not in comp.frameworks:
        return []
    out = _Rows()
    peers = [fw for fw in comp.frameworks if fw != "conveyor"]
    noop = median(comp.best_cell("conveyor", "noop"), "steady_throughput")
    out.at_least("NOOP steady /s, one worker process", noop, 25_000, "≥ 25,000")
    fastest = max(
        (v for fw in peers if (v := median(comp.best_cell(fw, "noop"), "steady_throughput"))),
        default=None,
    )
    if noop is not None and fastest:
        ratio = noop / fastest
        out.check("NOOP vs fastest peer (steady, best settings)", ratio, ratio >= 10, "≥ 10 times")
    io_cells = [c for c in comp.cells.values() if c.framework == "conveyor" and c.scenario == "io"]
    io1000 = next((c for c in io_cells if c.setting.concurrency == 1000 and c.runs), None)
    io = median(io1000, "throughput")  # None: not measured at 1,000 (--quick, --no-sweep)
    out.at_least("IO /s at concurrency 1,000", io, 20_000, "≥ 20,000")
    cpu_cell = comp.best_cell("conveyor", "cpu")
    share, bare_rate = median(cpu_cell, "bare_share"), median(cpu_cell, "bare_rate")
    if share is not None and bare_rate is not None:  # each run against the loop just before it
        name = f"CPU: % of two cores' bare loop (measured before each run: {bare_rate:,.0f}/s)"
        out.check(name, share, share >= 85, "≥ 85 %")
    elif (cpu := median(cpu_cell, "throughput")) is not None and cpu_task_ms > 0:
        ideal = 2 * 1000 / cpu_task_ms
        share = cpu / ideal * 100
        out.check(f"CPU: % of two cores' bare loop ({ideal:,.0f}/s)", share, share >= 85, "≥ 85 %")
    ref = comp.ref("conveyor", "noop")
    out.at_least("bulk enqueue /s", median(ref, "bulk_enqueue_rate"), 100_000, "≥ 100,000")
    single = median(ref, "single_enqueue_rate")
    out.at_least("dispatch() from 100 coroutines /s", single, 20_000, "≥ 20,000")
    lat = comp.ref("conveyor", "latency")
    p50, p99 = median(lat, "latency_ms.p50"), median(lat, "latency_ms.p99")
    out.check("latency p50 ms", p50, None if p50 is None else p50 <= 2, "≤ 2")
    out.check("latency p99 ms", p99, None if p99 is None else p99 <= 10, "≤ 10")
    rss = median(ref, "peak_rss_mb")
    leanest = min(
        (v for fw in peers if (v := median(comp.ref(fw, "noop"), "peak_rss_mb"))), default=None
    )
    if rss is not None and leanest is not None:
        out.check(
            f"worker RSS MB, NOOP at c10 (leanest peer {leanest:,.0f})",
            rss,
            rss <= leanest,
            "≤ leanest peer",
        )
    return out.rows


#: entrant labels of the SQL comparison
PG, MARIADB, PROCRASTINATE = "conveyor (PostgreSQL)", "conveyor (MariaDB)", "procrastinate"


def sql_targets(comp: Comparison) -> list[list[str]]:
    """Issue 5's targets for Conveyor on PostgreSQL and MariaDB, from this run's medians."""
    out = _Rows()
    pg = median(comp.best_cell(PG, "noop"), "steady_throughput")
    if PG in comp.frameworks:
        out.at_least("PostgreSQL: NOOP steady /s, one worker process", pg, 10_000, "≥ 10,000")
    peer = median(comp.best_cell(PROCRASTINATE, "noop"), "steady_throughput")
    if pg is not None and peer:
        ratio = pg / peer
        out.check(
            "PostgreSQL: NOOP vs procrastinate (best settings)", ratio, ratio >= 10, "≥ 10 times"
        )
    if MARIADB in comp.frameworks:
        my = median(comp.best_cell(MARIADB, "noop"), "steady_throughput")
        out.at_least("MariaDB: NOOP steady /s, one worker process", my, 5_000, "≥ 5,000")
    for label, name in ((PG, "PostgreSQL"), (MARIADB, "MariaDB")):
        if label in comp.frameworks:
            bulk = median(comp.ref(label, "noop"), "bulk_enqueue_rate")
            out.at_least(f"{name}: bulk enqueue /s (dispatch_many)", bulk, 50_000, "≥ 50,000")
    return out.rows
