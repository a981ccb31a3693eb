"""Worker processes under signals, crashes and competition, on one real SQLite file."""

from __future__ import annotations

import collections
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import JobStatus
from tests.integration import tasks_cli
from tests.integration.helpers import (
    TASKS,
    Running,
    dispatch,
    done_keys,
    job_infos,
    records,
    started_keys,
    wait_until,
)

pytestmark = pytest.mark.slow

Start = Callable[..., Running]


def test_sigterm_finishes_the_running_job_and_releases_prefetched_ones(
    tmp_path: Path, url: str, start: Start
) -> None:
    out = tmp_path / "record.txt"
    ids = dispatch(
        url,
        [tasks_cli.record(path=str(out), key="a", seconds=1.0)]
        + [tasks_cli.record(path=str(out), key=k) for k in "bcd"],
    )
    # one slot and three prefetched: a runs, b c d are held but never started
    worker = start("worker", TASKS, "--url", url, "--concurrency", "1", "--prefetch", "3")
    wait_until(lambda: started_keys(out) == ["a"], 15, "job a to start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(15) == 0
    assert done_keys(out) == ["a"]  # finished within the grace...
    assert started_keys(out) == ["a"]  # ...and nothing else started
    assert "released=3" in worker.output()
    infos = job_infos(url, ids)
    assert infos[ids[0]].status is JobStatus.SUCCEEDED
    for job_id in ids[1:]:
        assert infos[job_id].status is JobStatus.QUEUED
        assert infos[job_id].attempts == 0  # released without using an attempt


def test_a_second_signal_exits_at_once(tmp_path: Path, url: str, start: Start) -> None:
    out = tmp_path / "record.txt"
    [job_id] = dispatch(url, [tasks_cli.record(path=str(out), key="slow", seconds=60)])
    worker = start("worker", TASKS, "--url", url, "--shutdown-grace", "60")
    wait_until(lambda: started_keys(out) == ["slow"], 15, "the job to start")
    worker.signal(signal.SIGINT)
    worker.wait_for_output("worker.stopping signal=SIGINT")
    worker.signal(signal.SIGINT)
    assert worker.wait(3) == 128 + signal.SIGINT
    assert "worker.exit signal=SIGINT" in worker.output()
    assert done_keys(out) == []
    # the job stays leased to the dead worker until its lease expires; it is not lost
    assert job_infos(url, [job_id])[job_id].status is JobStatus.ACTIVE


def test_a_worker_killed_mid_run_loses_no_job(tmp_path: Path, url: str, start: Start) -> None:
    out = tmp_path / "record.txt"
    keys = [f"k{i}" for i in range(12)]
    ids = dispatch(url, [tasks_cli.record(path=str(out), key=k, seconds=1.0) for k in keys])
    lease = {"CONVEYOR_LEASE_SECONDS": "2"}
    a = start("worker", TASKS, "--url", url, "--concurrency", "4", env=lease, name="a")
    wait_until(lambda: len(started_keys(out)) >= 4, 15, "worker A to start 4 jobs")
    os.kill(a.pid, signal.SIGKILL)
    assert a.wait(5) == -signal.SIGKILL

    b = start("worker", TASKS, "--url", url, "--concurrency", "12", env=lease, name="b")
    # A's jobs come back when their 2 s leases expire; each then takes 1 s
    wait_until(lambda: set(done_keys(out)) == set(keys), 2 + 1 + 8, "every job to finish")
    b.signal(signal.SIGTERM)
    assert b.wait(15) == 0
    infos = job_infos(url, ids)
    assert {i.status for i in infos.values()} == {JobStatus.SUCCEEDED}
    assert max(i.attempts for i in infos.values()) == 2  # the killed run counted


def test_two_workers_on_one_file_never_run_a_job_twice(
    tmp_path: Path, url: str, start: Start
) -> None:
    out = tmp_path / "record.txt"
    keys = [f"j{i}" for i in range(400)]
    ids = dispatch(url, [tasks_cli.record(path=str(out), key=k) for k in keys])
    workers = [
        start("worker", TASKS, "--url", url, "--burst", "--concurrency", "20", name=f"w{n}")
        for n in range(2)
    ]
    for worker in workers:
        assert worker.wait(40) == 0, worker.output()
    runs = collections.Counter(started_keys(out))
    assert sorted(runs) == sorted(keys)
    assert [k for k, n in runs.items() if n > 1] == []
    assert collections.Counter(done_keys(out)) == runs
    pids = {r[3] for r in records(out)}
    assert pids <= {str(w.pid) for w in workers}
    infos = job_infos(url, ids)
    assert {i.status for i in infos.values()} == {JobStatus.SUCCEEDED}
    assert {i.attempts for i in infos.values()} == {1}


def test_max_jobs_per_child_without_a_supervisor_exits(
    tmp_path: Path, url: str, start: Start
) -> None:
    out = tmp_path / "record.txt"
    ids = dispatch(url, [tasks_cli.record(path=str(out), key=f"m{i}") for i in range(5)])
    worker = start("worker", TASKS, "--url", url, "--concurrency", "1", "--max-jobs-per-child", "2")
    assert worker.wait(20) == 0, worker.output()
    assert len(done_keys(out)) == 2
    states = collections.Counter(i.status for i in job_infos(url, ids).values())
    assert states == {JobStatus.SUCCEEDED: 2, JobStatus.QUEUED: 3}
