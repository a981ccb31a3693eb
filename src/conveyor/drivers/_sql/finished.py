"""Waiting for a job to finish: woken at once by this driver's own writes, else by polling.

A job finished by a worker in another process is noticed by polling ``get_job``
with a growing interval (10 ms up to 250 ms), so a waiting handle costs at most a
few queries per second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable

from conveyor.core.job import JobInfo

_FIRST_POLL = 0.01
_MAX_POLL = 0.25


class FinishWaiters:
    """Futures per job id, resolved when this driver finishes or cancels the job."""

    def __init__(self) -> None:
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def wake(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            for fut in self._waiters.pop(job_id, ()):
                if not fut.done():
                    fut.set_result(None)

    def _add(self, job_id: str) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, []).append(fut)
        return fut

    def _discard(self, job_id: str, fut: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(job_id)
        if waiters is not None and fut in waiters:
            waiters.remove(fut)
            if not waiters:
                del self._waiters[job_id]

    async def wait(
        self,
        job_id: str,
        timeout: float | None,
        get_job: Callable[[str], Awaitable[JobInfo | None]],
    ) -> JobInfo | None:
        """Return the finished job (``None`` if it vanished); ``TimeoutError`` after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        interval = _FIRST_POLL
        fut: asyncio.Future[None] | None = None
        try:
            while True:
                if fut is None or fut.done():
                    if fut is not None:
                        self._discard(job_id, fut)
                    fut = self._add(job_id)  # before looking, so no finish slips in between
                info = await get_job(job_id)
                if info is None or info.status.finished:
                    return info
                pause = interval
                if deadline is not None:
                    pause = min(pause, deadline - loop.time())
                    if pause <= 0:
                        raise TimeoutError(f"job {job_id} not finished after {timeout}s")
                await asyncio.wait((fut,), timeout=pause)
                interval = min(interval * 2, _MAX_POLL)
        finally:
            if fut is not None:
                self._discard(job_id, fut)
