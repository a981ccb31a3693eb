"""The seam between the harness and a task queue being measured.

Adding a framework (a peer such as arq or Taskiq, in a later issue) means adding
one module that defines a class satisfying :class:`Framework` and one line in
:data:`FRAMEWORKS`. The harness (:mod:`benchmarks.run_one`) does all the timing,
identically for everyone: a framework only enqueues and runs jobs.

Contract for the framework's tasks: task ``i`` calls :func:`benchmarks.timing.record`
with ``i`` as its last act (its first, for the latency scenario), wherever it runs
(the worker, a thread, a pool child). That is how completions are observed.

Standard library only (see :mod:`benchmarks`).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything one run needs; written to JSON for the run's subprocess."""

    framework: str
    target: str  # broker or driver, e.g. "memory", "sqlite"
    scenario: str
    count: int
    concurrency: int
    process_pool: int
    single_count: int
    single_concurrency: int
    chunk: int
    paced: bool
    rate: float
    workdir: str
    result_path: str
    loop: str = "asyncio"  # or "uvloop"
    profile_path: str | None = None  # profile the worker phase; save here (no suffix)
    profiler: str = "pyinstrument"  # or "py-spy"
    # side-by-side runs on Redis (benchmarks.peers.settings); the defaults: Conveyor alone
    workers: int = 1  # worker processes
    pool: str = ""  # the framework's executor: prefork/threads/gevent/process
    setting: str = ""  # label of this setting in the report
    serial_count: int = 0  # jobs enqueued strictly one at a time (send_one, no concurrency)
    budget: float = 0.0  # external workers: stop after this many seconds (0: no limit)
    database: str = ""  # SQL targets: the run's own database (benchmarks.sqlctl)

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: Path) -> RunSpec:
        data = json.loads(path.read_text())
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


class Producer(Protocol):
    """Enqueues benchmark jobs ``i`` (the scenario's task with argument ``i``)."""

    async def open(self) -> None: ...

    async def send_many(self, indices: range) -> None:
        """Enqueue jobs ``indices`` with the framework's bulk API, in one call if it can."""
        ...

    async def send_one(self, i: int) -> None:
        """Enqueue one job the way an application would (``await t(i).dispatch()``)."""
        ...

    async def close(self) -> None: ...


class Worker(Protocol):
    """Runs the jobs a :class:`Producer` enqueued, in one worker process."""

    async def run_until_empty(self) -> dict[str, Any]:
        """Run until every enqueued job is finished (burst mode); return the worker's stats."""
        ...

    async def start(self) -> None:
        """Start working in the background (paced scenarios)."""
        ...

    async def stop(self) -> dict[str, Any]:
        """Stop a started worker; return its stats."""
        ...


class Framework(Protocol):
    """A task queue under test. Instances are built in the run's subprocess."""

    name: str

    def targets(self) -> Sequence[str]:
        """The brokers/drivers this framework can be measured on."""
        ...

    def unavailable(self, target: str) -> str | None:
        """Why ``target`` can't be measured here (missing driver or server), else ``None``."""
        ...

    def versions(self) -> dict[str, str]:
        """Package versions worth reporting."""
        ...

    def producer(self, spec: RunSpec, *, scratch: bool) -> Producer:
        """A producer onto a fresh broker; ``scratch`` ones are thrown away unprocessed."""
        ...

    def worker(self, spec: RunSpec, producer: Producer) -> Worker:
        """A worker over ``producer``'s broker (in-process brokers share the object)."""
        ...

    # optional, neither timed:
    # ``async def prepare(self, spec: RunSpec) -> None`` before the first phase (SQL
    # targets: create the schema in the run's fresh databases);
    # ``async def before_work(self, spec: RunSpec) -> None`` between the bulk enqueue and
    # the worker's start (SQL targets: ANALYZE the fresh tables, see benchmarks.sqlctl)


@dataclass(frozen=True, slots=True)
class Entry:
    ref: str  # "module:Class"
    venv: str | None = None  # peers: their virtualenv under benchmarks/.venvs; None: this Python

    def interpreter(self, root: Path) -> str:
        if self.venv is None:
            return sys.executable
        return str(root / "benchmarks" / ".venvs" / self.venv / "bin" / "python")


#: framework name -> where it lives and which Python runs it
FRAMEWORKS: dict[str, Entry] = {
    "conveyor": Entry("benchmarks.conveyor_runner:ConveyorFramework"),
    # peers: benchmarks/peers/, each in its own venv (benchmarks/venvs.py)
    "asynctasq": Entry("benchmarks.peers.asynctasq:AsyncTasqFramework", venv="asynctasq"),
    "celery": Entry("benchmarks.peers.celery:CeleryFramework", venv="celery"),
    "arq": Entry("benchmarks.peers.arq:ArqFramework", venv="arq"),
    "taskiq": Entry("benchmarks.peers.taskiq:TaskiqFramework", venv="taskiq"),
    "saq": Entry("benchmarks.peers.saq:SaqFramework", venv="saq"),
    "streaq": Entry("benchmarks.peers.streaq:StreaqFramework", venv="streaq"),
    "dramatiq": Entry("benchmarks.peers.dramatiq:DramatiqFramework", venv="dramatiq"),
    "rq": Entry("benchmarks.peers.rq:RqFramework", venv="rq"),
    # on PostgreSQL (benchmarks.compare, "Side by side on PostgreSQL and MariaDB")
    "procrastinate": Entry(
        "benchmarks.peers.procrastinate:ProcrastinateFramework", venv="procrastinate"
    ),
}
#: peers measured on PostgreSQL rather than Redis
SQL_PEERS = ("procrastinate",)
#: peers measured on Redis
PEERS = tuple(
    name for name, entry in FRAMEWORKS.items() if entry.venv is not None and name not in SQL_PEERS
)


def load(name: str) -> Framework:
    try:
        ref = FRAMEWORKS[name].ref
    except KeyError:
        raise SystemExit(f"unknown framework {name!r}; known: {', '.join(FRAMEWORKS)}") from None
    module, _, cls = ref.partition(":")
    framework: Framework = getattr(importlib.import_module(module), cls)()
    return framework
