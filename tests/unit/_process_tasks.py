"""Process-pool tasks for ``test_process_pool.py``; the pool's children import this module."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from conveyor.core.context import current_job
from conveyor.core.signals import Fail, Retry, Snooze
from conveyor.core.task import task


@task(process=True)
def add(a: int, b: int) -> list[int]:
    """The sum, and the pid that computed it."""
    return [a + b, os.getpid()]


@task(process=True)
async def double(x: int) -> list[int]:
    await asyncio.sleep(0)
    return [x * 2, os.getpid()]


@task(process=True)
def pid() -> int:
    return os.getpid()


@task(process=True)
def boom(message: str) -> None:
    raise ValueError(message)


@task(process=True, retry_on=OSError)
def boom_not_retried() -> None:
    raise ValueError("not an OSError")


@task(process=True)
def signal(kind: str) -> None:
    if kind == "retry":
        raise Retry(5)
    if kind == "snooze":
        raise Snooze(2)
    raise Fail("given up")


@task(process=True)
def sleepy(seconds: float) -> int:
    current_job().report_progress_sync(0.0, str(os.getpid()))
    time.sleep(seconds)
    return os.getpid()


@task(process=True)
def die(code: int) -> None:
    os._exit(code)


@task(process=True)
def progress_sync(steps: int) -> int:
    job = current_job()
    for i in range(1, steps + 1):
        job.report_progress_sync(i / steps, f"step {i}")
    return steps


@task(process=True)
async def progress_async(steps: int) -> str:
    job = current_job()
    for i in range(1, steps + 1):
        await job.report_progress(i / steps, f"step {i}")
    return f"{job.id}/{job.task}/{job.queue}/{job.attempt}/{job.max_attempts}"


@task(process=True)
def wait_for_cancel(limit: float) -> bool:
    """Reports that it started, then waits for ``is_cancelled``; True if it was seen."""
    job = current_job()
    if job.is_cancelled:
        return False
    job.report_progress_sync(0.0, "started")
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if job.is_cancelled:
            return True
        time.sleep(0.01)
    return False


@task(process=True)
def is_cancelled_now() -> bool:
    return current_job().is_cancelled


@task(process=True)
def rendezvous(directory: str, parties: int, limit: float) -> int:
    """Waits until ``parties`` tasks have checked in; proves they ran at the same time."""
    here = Path(directory)
    (here / str(os.getpid())).touch()
    deadline = time.monotonic() + limit
    while len(list(here.iterdir())) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError("the other tasks never showed up")
        time.sleep(0.01)
    return os.getpid()


@task(process=True)
def unencodable() -> object:
    return object()


@task(process=True)
def echo(data: bytes) -> bytes:
    return data


@task(process=True)
def quick_or_die(code: int, marker: str = "") -> int:
    """Returns at once (code < 0), or kills its process with exit code ``code``.

    With ``marker``, first creates that file: proof that the job ran.
    """
    if marker:
        Path(marker).touch(exist_ok=False)  # a second run of the same job fails
    if code >= 0:
        os._exit(code)
    return os.getpid()
