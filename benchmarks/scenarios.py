"""What is measured (SPEC §12). Standard library only (see :mod:`benchmarks`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    count: int  # jobs per run
    quick_count: int  # jobs per run with --quick
    concurrency: int  # worker concurrency
    process_pool: int = 0  # process-pool size (0: not used)
    paced: bool = False  # dispatch one job at a time to a running worker (latency)
    rate: float = 0.0  # paced: jobs per second

    def jobs(self, quick: bool) -> int:
        return self.quick_count if quick else self.count


NOOP = Scenario("noop", "20,000 tasks that do nothing", 20_000, 2_000, concurrency=100)
IO = Scenario("io", "10,000 tasks that await asyncio.sleep(0.01)", 10_000, 1_000, concurrency=1_000)
CPU = Scenario(
    "cpu",
    "5,000 tasks of ~1 ms pure-Python work, process=True",
    5_000,
    300,
    concurrency=100,
    process_pool=2,
)
LATENCY = Scenario(
    "latency",
    "2,000 no-op tasks dispatched one at a time at 500/s to a running worker",
    2_000,
    300,
    concurrency=100,
    paced=True,
    rate=500.0,
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (NOOP, IO, CPU, LATENCY)}
DEFAULT = ("noop", "io", "cpu", "latency")

#: ``await task().dispatch()`` from this many coroutines at once, for the single-enqueue rate
SINGLE_CONCURRENCY = 100
#: at most this many jobs in the single-enqueue phase
SINGLE_MAX = 10_000
#: jobs per ``dispatch_many`` call in the bulk-enqueue phase
CHUNK = 1_000
