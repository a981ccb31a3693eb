"""The ``conveyor`` command, run as a real process against a real SQLite broker."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor import JobStatus, Settings
from tests.integration import tasks_cli
from tests.integration.helpers import TASKS, Running, conveyor, dispatch, job_infos

pytestmark = pytest.mark.slow


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], code: int, fragment: str
) -> None:
    out, err = result.stdout, result.stderr
    assert result.returncode == code, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["check", "--url", "nope"], 2, "bad broker URL"),
        (["check", "--url", "foo://x"], 2, "unknown URL scheme 'foo'"),
        (["stats", "--url", "sqlite:////no-such-dir-for-conveyor/x.db"], 1, "does not exist"),
        (["worker", "no_such_module_for_conveyor", "--url", "URL"], 2, "no module named"),
        (["worker", "--app", f"{TASKS}:nope"], 2, "has no attribute 'nope'"),
        (["worker", "--app", f"{TASKS}:app", "--url", "URL"], 2, "not both"),
        (["enqueue", "it.nope", "-m", TASKS, "--url", "URL"], 2, "unknown task 'it.nope'"),
        (["enqueue", "it.add", "-m", TASKS, "--args", '{"a": 1}', "--url", "URL"], 2, "'b'"),
        (["enqueue", "it.add", "-m", TASKS, "--args", "[1, 2]", "--url", "URL"], 2, "JSON object"),
        (["enqueue", "it.add", "-m", TASKS, "--args", "{nope", "--url", "URL"], 2, "not valid"),
        (["jobs", "show", "0123abcd", "--url", "URL"], 1, "not found"),
        (["dead", "purge", "--url", "URL"], 2, "--yes"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    tmp_path: Path, url: str, args: list[str], code: int, fragment: str
) -> None:
    result = conveyor(*(url if a == "URL" else a for a in args), cwd=tmp_path)
    assert_one_line_error(result, code, fragment)


def test_a_bad_setting_is_one_line(tmp_path: Path) -> None:
    result = conveyor("check", cwd=tmp_path, env={"CONVEYOR_LEASE_SECONDS": "soon"})
    assert_one_line_error(result, 2, "CONVEYOR_LEASE_SECONDS")


def test_check_on_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path) -> None:
    result = conveyor("check", "--url", "sqlite:///typo.db", cwd=tmp_path)
    assert_one_line_error(result, 1, "'typo.db' does not exist")
    assert not (tmp_path / "typo.db").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    result = conveyor("--debug", "check", "--url", "foo://x", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("error: unknown URL scheme")


def test_enqueue_then_a_burst_worker_runs_it(tmp_path: Path, url: str) -> None:
    enq = conveyor(
        "enqueue", "it.add", "-m", TASKS, "--args", '{"a": 2, "b": 3}', "--url", url, cwd=tmp_path
    )
    assert enq.returncode == 0, enq.stderr
    job_id = enq.stdout.strip()
    assert len(job_id) == 32

    run = conveyor("worker", TASKS, "--url", url, "--burst", "--log-format", "json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert {"ts", "level", "event", "msg"} <= events[0].keys()
    succeeded = [e for e in events if e["event"] == "job.succeeded"]
    assert [e["id"] for e in succeeded] == [job_id]

    show = conveyor("jobs", "show", job_id, "--url", url, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "succeeded" in show.stdout
    assert "result    5" in show.stdout
    assert "{'a': 2, 'b': 3}" in show.stdout


def test_worker_with_app_and_banner(tmp_path: Path, url: str) -> None:
    [job_id] = dispatch(url, [tasks_cli.add(a=1, b=1)])
    run = conveyor(
        "worker",
        "--app",
        f"{TASKS}:app",
        "--burst",
        cwd=tmp_path,
        env={
            "CONVEYOR_URL": url,
            "CONVEYOR_QUEUES": "default,other",
            "CONVEYOR_LOG_LEVEL": "warning",
        },
    )
    assert run.returncode == 0, run.stderr
    assert "it.add" in run.stderr  # the banner lists registered tasks
    assert "default, other" in run.stderr
    assert "job.started" not in run.stderr  # --log-level warning silences the job lines
    assert job_infos(url, [job_id])[job_id].status is JobStatus.SUCCEEDED


def test_the_banner_masks_the_password(tmp_path: Path) -> None:
    run = conveyor("worker", TASKS, "--url", "memory://ops:hunter2@broker", "--burst", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "memory://ops:***@broker" in run.stderr
    assert "hunter2" not in run.stderr


def test_dead_letters_list_show_retry_purge(tmp_path: Path, url: str) -> None:
    ids = dispatch(
        url,
        [
            tasks_cli.boom(message="kaput").max_attempts(1),
            tasks_cli.boom(message="").max_attempts(1),
        ],
    )
    assert conveyor("worker", TASKS, "--url", url, "--burst", cwd=tmp_path).returncode == 0

    listing = conveyor("dead", "list", "--url", url, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    for job_id in ids:
        assert job_id in listing.stdout
    assert "ValueError" in listing.stdout
    assert "kaput" in listing.stdout
    assert "no message" in listing.stdout  # Fail()

    show = conveyor("dead", "show", ids[0], "--url", url, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "Traceback (most recent call last)" in show.stdout
    assert "ValueError: kaput" in show.stdout

    retry = conveyor("dead", "retry", ids[0], "--url", url, cwd=tmp_path)
    assert retry.returncode == 0, retry.stderr
    info = job_infos(url, [ids[0]])[ids[0]]
    assert info.status is JobStatus.QUEUED
    assert info.attempts == 0
    again = conveyor("dead", "retry", ids[0], "--url", url, cwd=tmp_path)
    assert_one_line_error(again, 1, "not in the dead letters")
    not_dead = conveyor("dead", "show", ids[0], "--url", url, cwd=tmp_path)
    assert_one_line_error(not_dead, 1, "is not in the dead letters (it is queued)")

    every = conveyor("dead", "retry", "--all", "--url", url, cwd=tmp_path)
    assert every.returncode == 0, every.stderr
    assert "queued 1 dead job again" in every.stdout
    assert conveyor("worker", TASKS, "--url", url, "--burst", cwd=tmp_path).returncode == 0

    purge = conveyor("dead", "purge", "--yes", "--url", url, cwd=tmp_path)
    assert purge.returncode == 0, purge.stderr
    assert "purged 2 dead jobs" in purge.stdout
    assert job_infos(url, ids) == {}
    empty = conveyor("dead", "list", "--url", url, cwd=tmp_path)
    assert "no dead letters" in empty.stdout


def test_jobs_show_and_cancel(tmp_path: Path, url: str) -> None:
    [job_id] = dispatch(url, [tasks_cli.add(a=1, b=2).delay(600)])
    show = conveyor("jobs", "show", job_id, "--url", url, cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert "scheduled" in show.stdout
    assert "it.add" in show.stdout

    cancel = conveyor("jobs", "cancel", job_id, "--url", url, cwd=tmp_path)
    assert cancel.returncode == 0, cancel.stderr
    assert f"cancelled {job_id}" in cancel.stdout
    assert job_infos(url, [job_id])[job_id].status is JobStatus.CANCELLED

    twice = conveyor("jobs", "cancel", job_id, "--url", url, cwd=tmp_path)
    assert_one_line_error(twice, 1, "already finished (cancelled)")


def test_check_migrate_and_stats(tmp_path: Path, url: str) -> None:
    if url.startswith("sqlite:"):  # a new file: check must not be what creates it
        assert_one_line_error(conveyor("check", "--url", url, cwd=tmp_path), 1, "migrate")
    migrate = conveyor("migrate", "--url", url, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    assert "schema" in migrate.stdout
    check = conveyor("check", "--url", url, cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("ok: ")
    memory = conveyor("migrate", "--url", "memory://", cwd=tmp_path)
    assert "nothing to migrate" in memory.stdout

    dispatch(url, [tasks_cli.add(a=1, b=2).on_queue("reports")])
    stats = conveyor("stats", "--url", url, cwd=tmp_path)
    assert stats.returncode == 0, stats.stderr
    row = next(line for line in stats.stdout.splitlines() if line.startswith("reports"))
    assert row.split()[1:] == ["0", "1", "0", "0", "0", "0", "0"]


def test_env_prints_a_template_of_every_setting(tmp_path: Path) -> None:
    result = conveyor("env", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    for name in Settings.model_fields:
        assert f"# CONVEYOR_{name.upper()}=" in text
    assert "# CONVEYOR_URL=sqlite:///conveyor.db" in text
    assert "# CONVEYOR_PROCESSES=" in text  # flags without a settings field are listed too
    assert all(line.startswith("#") for line in text.splitlines() if line)


def test_stats_watch_refreshes_until_ctrl_c(
    tmp_path: Path, url: str, start: Callable[..., Running]
) -> None:
    dispatch(url, [tasks_cli.add(a=1, b=2).on_queue("watched")])
    watch = start("stats", "--watch", "--interval", "0.2", "--url", url)
    watch.wait_for_output("watched")
    watch.signal(signal.SIGINT)
    assert watch.wait(10) == 0
    assert "Traceback" not in watch.output()


def test_demo_runs_to_a_summary(tmp_path: Path) -> None:
    result = conveyor("demo", "--jobs", "200", cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = result.stdout
    assert "succeeded" in text
    assert "throughput" in text
    db = tmp_path / "conveyor-demo.db"
    assert f"conveyor dead list --url sqlite:///{db}" in text
    listing = conveyor("dead", "list", "--url", f"sqlite:///{db}", cwd=tmp_path)
    assert listing.stdout.count("demo.poison") == 2  # and nothing else died
    assert "demo.cpu" not in listing.stdout


def test_dead_letters_list_keeps_its_columns_at_80_columns(tmp_path: Path, url: str) -> None:
    """Piped, or on an 80-column terminal, the table squeezed task, queue, attempts and error
    to nothing (headers included): only the id and the time were left. Each job is now
    listed on two unwrapped lines when the table does not fit."""
    [job_id] = dispatch(url, [tasks_cli.boom(message="kaput").max_attempts(1)])
    assert conveyor("worker", TASKS, "--url", url, "--burst", cwd=tmp_path).returncode == 0
    listing = conveyor("dead", "list", "--url", url, cwd=tmp_path, env={"COLUMNS": "80"})
    assert listing.returncode == 0, listing.stderr
    info = job_infos(url, [job_id])[job_id]
    for shown in (job_id, info.task, info.queue, "attempts 1", "ValueError: kaput"):
        assert shown in listing.stdout
