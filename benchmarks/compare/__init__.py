"""Side by side: Conveyor and its peers on the same server, in one run.

Two comparisons, each run the same way:

- **on Redis**: Conveyor's ``redis://`` driver and every Redis-backed peer
  (:data:`benchmarks.framework.PEERS`);
- **on PostgreSQL and MariaDB**: Conveyor's ``postgresql://`` driver beside Procrastinate
  on the same PostgreSQL, and Conveyor's ``mysql://`` driver on MariaDB.

The plan, each phase one run at a time, every run on an empty broker
(:mod:`~benchmarks.compare.stores`):

1. **concurrency 10** — every (framework, scenario) at its reference setting
   (:mod:`benchmarks.peers.settings`), ``repeat`` times, interleaved (repetition k of
   every cell before repetition k+1 of any), so a slow drift on this shared machine hits
   everyone alike. The NOOP runs also time enqueueing: one at a time, from 100
   concurrent producers, and in bulk where the API has it.
2. **sweep** — every other candidate setting once, at a quarter of the jobs and a
   shorter budget; the one with the highest steady-state throughput (the reference's:
   its median) is the framework's best for that scenario.
3. **best** — each best setting that is not the reference one, ``repeat`` times.
4. **latency** — jobs dispatched one at a time at a steady light rate to a running,
   idle worker; dispatch-to-start (start ≈ completion for a no-op) p50/p99.

Each run's worker is stopped after a few seconds (:data:`~benchmarks.compare.run.BUDGET_SECONDS`);
the rates of a run cut short are over the jobs done by then (marked † in the tables), and
once a setting's rate is known its later runs get only the jobs it can do in that time.

Modules: :mod:`~benchmarks.compare.model` (entrants, cells), :mod:`~benchmarks.compare.run`
(the phases), :mod:`~benchmarks.compare.stores` (empty brokers),
:mod:`~benchmarks.compare.tables`, :mod:`~benchmarks.compare.targets` and
:mod:`~benchmarks.compare.markdown` (the report), :mod:`~benchmarks.compare.chart`.
"""

from __future__ import annotations

from benchmarks.compare.chart import chart
from benchmarks.compare.markdown import as_json, redis_section, sql_section
from benchmarks.compare.model import Comparison, Entrant
from benchmarks.compare.run import execute, prepare
from benchmarks.compare.stores import RedisStore, SqlStore
from benchmarks.compare.targets import MARIADB, PG, PROCRASTINATE, redis_targets, sql_targets

#: the SQL comparison's entrants, in the order they run
SQL_ENTRANTS = (
    Entrant(PG, "conveyor", "postgresql"),
    Entrant(PROCRASTINATE, "procrastinate", "postgresql"),
    Entrant(MARIADB, "conveyor", "mysql"),
)
#: what the SQL comparison measures (no CPU scenario: it would measure the process pool,
#: not the driver)
SQL_SCENARIOS = ("noop", "io", "latency")

__all__ = [
    "SQL_ENTRANTS",
    "SQL_SCENARIOS",
    "Comparison",
    "Entrant",
    "RedisStore",
    "SqlStore",
    "as_json",
    "chart",
    "execute",
    "prepare",
    "redis_section",
    "redis_targets",
    "sql_section",
    "sql_targets",
]
