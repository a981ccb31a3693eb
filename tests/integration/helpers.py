"""Running ``python -m conveyor`` for real, and waiting on what it leaves behind.

Tests wait for conditions (a line in a log, a job state in the database) by polling
with short intervals up to a deadline; none sleeps for a fixed long time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from conveyor import Conveyor, Dispatch, JobInfo

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
TASKS = "tests.integration.tasks_cli"


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a CLI process: no stray CONVEYOR_* settings, wide tables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + path if path else "")
    env["COLUMNS"] = "250"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def conveyor(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run one CLI command to completion."""
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args],
        cwd=cwd,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Running:
    """A CLI process started in the background, its stdout and stderr going to a file."""

    def __init__(self, args: Sequence[str], cwd: Path, log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "conveyor", *args],
                cwd=cwd,
                env=cli_env(env),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"process still running after {timeout}s; output:\n{self.output()}"
            ) from None

    def wait_for_output(self, text: str, timeout: float = 15, count: int = 1) -> str:
        def seen() -> str | None:
            out = self.output()
            if out.count(text) >= count:
                return out
            if self.proc.poll() is not None:
                raise AssertionError(f"exited with {self.proc.returncode}; output:\n{out}")
            return None

        return wait_until(seen, timeout, f"{count} x {text!r} in the output of {self.proc.args!r}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def wait_until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll ``check`` every 20 ms until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def records(path: Path) -> list[list[str]]:
    """The lines the test tasks appended to ``path``, split into words."""
    if not path.exists():
        return []
    return [line.split() for line in path.read_text().splitlines() if line]


def done_keys(path: Path) -> list[str]:
    return [r[1] for r in records(path) if r[0] == "done"]


def started_keys(path: Path) -> list[str]:
    return [r[1] for r in records(path) if r[0] == "start"]


def dispatch(url: str, items: Sequence[Dispatch[Any]]) -> list[str]:
    """Enqueue ``items`` on the broker at ``url`` from this process; return the job ids."""

    async def go() -> list[str]:
        async with Conveyor(url) as app:
            return [h.id for h in await app.dispatch_many(items)]

    return asyncio.run(go())


def job_infos(url: str, ids: Sequence[str]) -> dict[str, JobInfo]:
    async def go() -> dict[str, JobInfo]:
        async with Conveyor(url) as app:
            found = {i: await app.job_info(i) for i in ids}
        return {i: info for i, info in found.items() if info is not None}

    return asyncio.run(go())
