"""At which settings each framework is measured side by side (on Redis; Procrastinate on
PostgreSQL).

Every framework runs NOOP at its **concurrency-10** setting (what AsyncTasQ's published
comparison used) and every scenario at its **best** setting: the sweep's candidates each
run once at a quarter of the jobs, the one with the highest steady-state throughput wins,
and it is then measured like the concurrency-10 setting (three runs, median). For IO and
CPU the concurrency-10 setting is only one of the sweep's candidates.

A :class:`Setting` is read by each framework's worker:

- ``concurrency``: jobs in flight per worker process (async frameworks: coroutines;
  Celery: pool size; Dramatiq: worker threads/greenlets; RQ: 1, it has no concurrency);
- ``workers``: worker processes started side by side (RQ's only form of concurrency;
  async frameworks without a process pool use 2 for the CPU scenario, one per core);
- ``pool``: the framework's executor: ``prefork``/``threads``/``gevent``/``solo`` for Celery,
  ``threads``/``gevent`` for Dramatiq, ``process`` where an async framework offers a
  process pool for CPU-bound tasks (Conveyor, Taskiq, AsyncTasQ); ``poll10ms`` for arq
  (``poll_delay=0.01`` instead of its default 0.5 s);
- ``process_pool``: that pool's size.

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

TIMES = "\u00d7"


@dataclass(frozen=True, slots=True)
class Setting:
    concurrency: int
    workers: int = 1
    pool: str = ""
    process_pool: int = 0

    @property
    def label(self) -> str:
        pool = f" {self.pool}" if self.pool else ""
        procs = f"{self.workers}{TIMES}" if self.workers > 1 else ""
        extra = f"+{self.process_pool}p" if self.process_pool else ""
        return f"{procs}c{self.concurrency}{pool}{extra}".strip()


def _async(
    noop_io: tuple[int, ...], *, process_pool: bool, tuned: Setting | None = None
) -> dict[str, list[Setting]]:
    """An asyncio framework: one worker process, coroutines; CPU in a pool if it has one.

    ``tuned``: one more NOOP/IO candidate with a framework option changed from its default.
    """
    if process_pool:
        cpu = [
            Setting(10, pool="process", process_pool=2),
            Setting(100, pool="process", process_pool=2),
        ]
    else:  # the task blocks the loop: a second worker process is how you use the second core
        cpu = [Setting(10), Setting(10, workers=2)]
    extra = [tuned] if tuned else []
    return {
        "noop": [Setting(c) for c in noop_io] + extra,
        "io": [Setting(c) for c in noop_io] + extra,
        "cpu": cpu,
        "latency": [Setting(10)],
    }


#: framework -> scenario -> settings; the first is the concurrency-10 reference, the rest
#: (with it) are the sweep. Candidates that lost clearly in every earlier full run (Celery
#: NOOP on gevent and IO on threads, Dramatiq and RQ with one job per process) are no
#: longer tried, to keep ``make bench`` short.
SETTINGS: dict[str, dict[str, list[Setting]]] = {
    "conveyor": _async((10, 100, 1000), process_pool=True),
    "asynctasq": _async((10, 100, 1000), process_pool=True),
    "taskiq": _async((10, 100, 1000), process_pool=True),
    # arq polls every 0.5 s (reading at most max(5 * max_jobs, 100) jobs): also try 10 ms
    "arq": _async((10, 100, 1000), process_pool=False, tuned=Setting(1000, pool="poll10ms")),
    "saq": _async((10, 100, 1000), process_pool=False),
    "streaq": _async((10, 100, 1000), process_pool=False),
    "celery": {
        # the default pool (prefork) at -c 10; gevent for I/O as Celery's docs advise
        "noop": [
            Setting(10, pool="prefork"),
            Setting(2, pool="prefork"),
            Setting(10, pool="threads"),
        ],
        "io": [
            Setting(10, pool="prefork"),
            Setting(100, pool="gevent"),
            Setting(1000, pool="gevent"),
        ],
        "cpu": [Setting(10, pool="prefork"), Setting(2, pool="prefork")],
        "latency": [Setting(10, pool="prefork")],
    },
    "dramatiq": {
        # one process, N threads; dramatiq's CLI default: (cores) processes of 8 threads
        "noop": [Setting(10, pool="threads"), Setting(8, workers=2, pool="threads")],
        "io": [
            Setting(10, pool="threads"),
            Setting(100, pool="threads"),
            Setting(1000, pool="gevent"),
        ],
        "cpu": [Setting(10, pool="threads"), Setting(8, workers=2, pool="threads")],
        "latency": [Setting(10, pool="threads")],
    },
    # on PostgreSQL: Procrastinate fetches one job per query; a pool as large as the jobs in
    # flight (its default has 4 connections) and a second worker process are the levers
    "procrastinate": {
        "noop": [
            Setting(10),
            Setting(100, pool="pool=20"),
            Setting(10, workers=2, pool="pool=10"),
        ],
        "io": [Setting(10), Setting(100, pool="pool=20"), Setting(1000, pool="pool=20")],
        "latency": [Setting(10)],
    },
    "rq": {
        # RQ runs one job at a time per worker process: concurrency N is N processes
        "noop": [Setting(1, workers=10), Setting(1, workers=2)],
        "io": [Setting(1, workers=10), Setting(1, workers=30)],
        "cpu": [Setting(1, workers=10), Setting(1, workers=2)],
        "latency": [Setting(1, workers=10)],
    },
}


def reference(framework: str, scenario: str) -> Setting:
    return SETTINGS[framework][scenario][0]


def sweep(framework: str, scenario: str) -> list[Setting]:
    return SETTINGS[framework][scenario]
