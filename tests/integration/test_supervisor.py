"""``conveyor worker --processes N``: children started, restarted when they die, recycled."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration import tasks_cli
from tests.integration.helpers import (
    TASKS,
    Running,
    alive,
    dispatch,
    done_keys,
    records,
    wait_until,
)

pytestmark = pytest.mark.slow

Start = Callable[..., Running]
STARTED = re.compile(r"supervisor\.child_started slot=(\d+) pid=(\d+)")


def children(proc: Running) -> list[tuple[int, int]]:
    """``(slot, pid)`` of every child the supervisor started, in order."""
    return [(int(s), int(p)) for s, p in STARTED.findall(proc.output())]


def test_processes_runs_n_children_and_restarts_a_dead_one(
    tmp_path: Path, url: str, start: Start
) -> None:
    sup = start("worker", TASKS, "--url", url, "--processes", "2")
    sup.wait_for_output("worker.online", count=2)  # both children up and working
    first = children(sup)
    assert sorted(slot for slot, _ in first) == [0, 1]
    victim = first[0][1]
    assert alive(victim)

    os.kill(victim, signal.SIGKILL)
    sup.wait_for_output("supervisor.child_started", count=3)
    assert "supervisor.child_died slot=0" in sup.output()
    sup.wait_for_output("worker.online", count=3)  # the replacement works
    pids = [pid for _, pid in children(sup)]
    assert len(set(pids)) == 3

    out = tmp_path / "record.txt"
    dispatch(url, [tasks_cli.record(path=str(out), key=f"s{i}") for i in range(10)])
    wait_until(lambda: len(done_keys(out)) == 10, 15, "the children to run 10 jobs")

    sup.signal(signal.SIGTERM)
    assert sup.wait(20) == 0
    assert not any(alive(pid) for pid in pids)
    assert sup.output().count("supervisor.child_stopped") == 2


def test_max_jobs_per_child_recycles_children(tmp_path: Path, url: str, start: Start) -> None:
    out = tmp_path / "record.txt"
    dispatch(url, [tasks_cli.record(path=str(out), key=f"r{i}") for i in range(7)])
    sup = start(
        "worker",
        TASKS,
        "--url",
        url,
        "--processes",
        "1",
        "--concurrency",
        "1",
        "--max-jobs-per-child",
        "3",
    )
    wait_until(lambda: len(done_keys(out)) == 7, 30, "7 jobs done by recycled children")
    assert len({r[3] for r in records(out)}) == 3  # 3 + 3 + 1 jobs, each child its own pid
    assert sup.output().count("supervisor.child_recycled") >= 2
    assert "supervisor.child_died" not in sup.output()
    sup.signal(signal.SIGTERM)
    assert sup.wait(20) == 0


def test_burst_children_are_not_restarted(tmp_path: Path, url: str, start: Start) -> None:
    out = tmp_path / "record.txt"
    dispatch(url, [tasks_cli.record(path=str(out), key=f"b{i}") for i in range(20)])
    sup = start("worker", TASKS, "--url", url, "--processes", "2", "--burst")
    assert sup.wait(30) == 0, sup.output()
    assert sorted(done_keys(out)) == sorted(f"b{i}" for i in range(20))
    assert sup.output().count("supervisor.child_done") == 2
