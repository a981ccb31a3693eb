"""What a side-by-side comparison holds: entrants, cells of runs, the sweep's verdicts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.peers.settings import Setting, reference, sweep
from benchmarks.report import Stat

#: metric -> where it is in a run's result
METRICS = {
    "throughput": "throughput",
    "steady_throughput": "steady_throughput",
    "serial_enqueue_rate": "serial_enqueue_rate",
    "single_enqueue_rate": "single_enqueue_rate",
    "bulk_enqueue_rate": "bulk_enqueue_rate",
    "fill_enqueue_rate": "fill_enqueue_rate",
    "peak_rss_mb": "peak_rss_mb",
    "cpu_us_per_job": "cpu_us_per_job",
    "bare_rate": "bare_rate",
    "bare_share": "bare_share",
    "worker_boot_seconds": "worker_boot_seconds",
    "latency_p50_ms": "latency_ms.p50",
    "latency_p99_ms": "latency_ms.p99",
    "latency_max_ms": "latency_ms.max",
}


@dataclass(frozen=True, slots=True)
class Entrant:
    """One row group of a comparison: a framework on one target (broker or driver)."""

    label: str  # as shown in the tables: "conveyor", "conveyor (MariaDB)"
    framework: str  # benchmarks.framework.FRAMEWORKS key
    target: str  # "redis", "postgresql", "mysql"


@dataclass(slots=True)
class Cell:
    """Every run of one (entrant, scenario, setting)."""

    framework: str  # the entrant's label
    scenario: str
    setting: Setting
    roles: set[str]  # "c10", "best", "sweep"
    count: int  # the scenario's jobs (a run may get fewer: see benchmarks.compare.run)
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
            "jobs_per_run": [r.get("jobs") for r in self.runs],
            "runs": len(self.runs),
            "errors": self.errors,
        }
        for name, path in METRICS.items():
            s = self.stat(path)
            if s is not None:
                out[name] = s.as_dict()
        return out


@dataclass(slots=True)
class Comparison:
    title: str  # "Redis", "PostgreSQL and MariaDB"
    frameworks: list[str]  # entrant labels, in the order they run
    scenarios: list[str]
    entrants: dict[str, Entrant] = field(default_factory=dict)
    cells: dict[tuple[str, str, str], Cell] = field(default_factory=dict)
    sweeps: dict[tuple[str, str], list[tuple[str, float | None]]] = field(default_factory=dict)
    best: dict[tuple[str, str], str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    servers: dict[str, dict[str, str]] = field(default_factory=dict)  # target -> facts
    raw: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    private_redis: bool = False

    @property
    def redis(self) -> dict[str, str]:
        return self.servers.get("redis", {})

    def settings(self, label: str, scenario: str) -> list[Setting]:
        return sweep(self.entrants[label].framework, scenario)

    def reference(self, label: str, scenario: str) -> Setting:
        return reference(self.entrants[label].framework, scenario)

    def cell(self, label: str, scenario: str, setting: Setting, count: int) -> Cell:
        key = (label, scenario, setting.label)
        if key not in self.cells:
            self.cells[key] = Cell(label, scenario, setting, set(), count)
        return self.cells[key]

    def ref(self, label: str, scenario: str) -> Cell | None:
        if label not in self.entrants:
            return None
        return self.cells.get((label, scenario, self.reference(label, scenario).label))

    def best_cell(self, label: str, scenario: str) -> Cell | None:
        setting = self.best.get((label, scenario))
        return self.cells.get((label, scenario, setting)) if setting else None


def median(cell: Cell | None, path: str) -> float | None:
    s = cell.stat(path) if cell is not None else None
    return s.median if s is not None else None
