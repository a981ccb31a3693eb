"""Tasks that integration tests run in real worker processes.

Each one appends what it did to a file named in its arguments, with one ``O_APPEND``
write per line, so that several processes can record into one file without tearing
lines; the tests read those files to see which jobs ran, where and how often.
"""

from __future__ import annotations

import asyncio
import os

from conveyor import Conveyor, Fail, current_job, task

#: for ``--app tests.integration.tasks_cli:app`` (its URL comes from CONVEYOR_URL)
app = Conveyor()


def append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


@task(name="it.record")
async def record(path: str, key: str, seconds: float = 0.0) -> str:
    """Writes ``start KEY JOB_ID PID`` and, ``seconds`` later, ``done KEY JOB_ID PID``."""
    job = current_job()
    append(path, f"start {key} {job.id} {os.getpid()}")
    if seconds:
        await asyncio.sleep(seconds)
    append(path, f"done {key} {job.id} {os.getpid()}")
    return key


@task(name="it.add")
def add(a: int, b: int) -> int:
    """A plain def task (runs in the worker's thread pool)."""
    return a + b


@task(name="it.boom", max_attempts=2, backoff=0.01)
async def boom(message: str) -> None:
    """Always fails: dead after its second attempt."""
    if not message:
        raise Fail("no message")
    raise ValueError(message)
