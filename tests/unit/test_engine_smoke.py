"""End to end on memory://: dispatch, run in a worker, typed results."""

from __future__ import annotations

import asyncio

import pytest

import conveyor
from conveyor import Conveyor, task
from conveyor.core.dispatch import set_default_app


@task
async def add(a: int, b: int) -> int:
    return a + b


@task
def multiply(a: int, b: int) -> int:
    return a * b


@pytest.fixture
def memory_app() -> Conveyor:
    app = Conveyor("memory://")
    set_default_app(app)
    return app


async def test_async_and_sync_tasks_run_in_a_worker(memory_app: Conveyor) -> None:
    h1 = await add(1, 2).dispatch()
    h2 = await multiply.dispatch(3, 4)
    worker = memory_app.worker(burst=True)
    stats = await worker.run()
    assert stats.succeeded == 2
    assert await h1.result() == 3
    assert await h2.result() == 12
    assert await h1.status() is conveyor.JobStatus.SUCCEEDED


async def test_wrong_argument_type_fails_at_dispatch(memory_app: Conveyor) -> None:
    with pytest.raises(conveyor.ArgumentError, match=r"\$\.a"):
        await add("x", 2).dispatch()  # type: ignore[arg-type]
    assert await memory_app.stats() == []


async def test_result_waits_for_a_running_worker(memory_app: Conveyor) -> None:
    worker = memory_app.worker(concurrency=4)
    running = asyncio.create_task(worker.run())
    handles = await conveyor.dispatch_many([add(i, i) for i in range(50)])
    results = [await h.result(timeout=5) for h in handles]
    worker.stop()
    await running
    assert results == [i + i for i in range(50)]


FAILED: list[BaseException] = []


class ExplodeInProcess(conveyor.Task[None]):
    process = True
    max_attempts = 1

    def handle(self, n: int) -> None:
        raise ValueError(f"boom {n}")

    async def failed(self, exc: BaseException) -> None:
        FAILED.append(exc)


@pytest.mark.slow
async def test_failed_hook_runs_for_process_tasks(memory_app: Conveyor) -> None:
    handle = await ExplodeInProcess(n=7).dispatch()
    stats = await memory_app.worker(burst=True, process_pool_size=1).run()
    assert stats.dead == 1
    with pytest.raises(conveyor.TaskFailed, match="boom 7"):
        await handle.result()
    assert len(FAILED) == 1
    assert isinstance(FAILED[0], conveyor.TaskFailed)
    assert FAILED[0].exc_type == "ValueError"
