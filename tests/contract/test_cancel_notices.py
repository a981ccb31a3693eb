"""Cancelling a running job takes effect at once on drivers with cancel notices.

Without a notice a worker learns of a cancel when it renews its leases, every
``lease / 3`` seconds. Redis publishes a notice from ``cancel.lua`` and PostgreSQL sends
a ``NOTIFY`` at commit; the worker then renews at once, and the renewal reports the
cancel (so a lost or forged notice changes nothing). The other drivers rely on renewal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobStatus
from conveyor.drivers.base import SupportsCancelNotices
from conveyor.exceptions import TaskCancelledError
from tests.contract.conftest import DRIVERS, DriverSpec, require_service

NOTIFYING = [spec for spec in DRIVERS if spec.name in ("redis", "valkey", "postgresql")]
LEASE = 30.0  # renewals every 10 s: a cancel seen sooner came from the notice


@pytest.fixture(params=NOTIFYING, ids=[spec.name for spec in NOTIFYING])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    spec: DriverSpec = request.param
    base = spec.broker_url(tmp_path)
    require_service(spec.name, base)
    isolate: Any = spec.isolate
    async with isolate(base) as private:
        yield private


async def test_a_running_job_is_cancelled_at_once_not_at_its_next_renewal(url: str) -> None:
    app = Conveyor(url, default_queue="notices", lease_seconds=LEASE)
    assert isinstance(app.driver, SupportsCancelNotices)
    started = asyncio.Event()

    @app.task
    async def long_async() -> str:
        started.set()
        await asyncio.sleep(60)
        return "finished"

    async with app:
        worker = app.worker(concurrency=2)
        run = asyncio.create_task(worker.run())
        try:
            handle = await long_async().dispatch()
            await asyncio.wait_for(started.wait(), 10)
            asked = time.monotonic()
            assert await handle.cancel() is True
            with pytest.raises(TaskCancelledError):
                await handle.result(timeout=5)
            assert time.monotonic() - asked < 5
            assert await handle.status() is JobStatus.CANCELLED
        finally:
            worker.stop()
            await run


async def test_a_notice_only_makes_the_worker_renew(url: str) -> None:
    """A notice only makes the worker renew; the broker's record decides."""
    app = Conveyor(url, default_queue="notices", lease_seconds=LEASE)
    driver: Any = app.driver
    started = asyncio.Event()
    release = asyncio.Event()

    @app.task
    async def waits() -> str:
        started.set()
        await release.wait()
        return "done"

    async with app:
        worker = app.worker(concurrency=2)
        run = asyncio.create_task(worker.run())
        try:
            handle = await waits().dispatch()
            await asyncio.wait_for(started.wait(), 10)
            renewals = 0
            renew = driver.renew

            async def counted(*args: Any) -> Any:
                nonlocal renewals
                renewals += 1
                return await renew(*args)

            driver.renew = counted  # counts; the real renewal runs
            worker.leases.poke(handle.id)  # what a notice does, forged or not
            for _ in range(100):
                if renewals:
                    break
                await asyncio.sleep(0.01)
            assert renewals == 1
            release.set()
            assert await handle.result(timeout=5) == "done"
        finally:
            worker.stop()
            await run
