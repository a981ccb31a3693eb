"""The process pool: real child processes running ``tests.unit._process_tasks``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.codec import get_codec
from conveyor.exceptions import ConfigurationError
from conveyor.worker.process_pool import CancelFlag, JobInfoLite, ProcessOutcome, ProcessPool

pytestmark = pytest.mark.slow

MODULES = ["tests.unit._process_tasks"]
CODEC = get_codec("msgpack")
JOB = JobInfoLite("job-1", "the-task", "default", 2, 5)


class Progress:
    """An ``on_progress`` that records calls and can wait for one."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str | None]] = []
        self.seen = asyncio.Event()

    async def __call__(self, fraction: float, message: str | None) -> None:
        self.calls.append((fraction, message))
        self.seen.set()


async def run(
    pool: ProcessPool,
    name: str,
    timeout: float | None = None,
    progress: Progress | None = None,
    cancelled: CancelFlag | None = None,
    **args: Any,
) -> ProcessOutcome:
    return await pool.run(
        f"tests.unit._process_tasks.{name}",
        CODEC.encode(args),
        JOB,
        timeout,
        progress or Progress(),
        cancelled or threading.Event(),
    )


def result(outcome: ProcessOutcome) -> Any:
    assert outcome.kind == "ok", outcome
    assert outcome.result is not None
    return CODEC.decode(outcome.result)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
async def pool() -> AsyncIterator[ProcessPool]:
    p = ProcessPool(2, MODULES, "msgpack")
    await p.start()
    yield p
    await p.close(5)


@pytest.fixture
async def pool1() -> AsyncIterator[ProcessPool]:
    p = ProcessPool(1, MODULES, "msgpack")
    await p.start()
    yield p
    await p.close(5)


async def test_sync_and_async_tasks_run_in_children(pool: ProcessPool) -> None:
    total, pid = result(await run(pool, "add", a=2, b=3))
    assert total == 5
    assert pid in pool.pids
    assert pid != os.getpid()
    doubled, pid = result(await run(pool, "double", x=21))
    assert doubled == 42
    assert pid in pool.pids


async def test_an_exception_becomes_an_error_outcome(pool: ProcessPool) -> None:
    out = await run(pool, "boom", message="bad input")
    assert out.kind == "error"
    assert out.error_type == "ValueError"
    assert out.error_message == "bad input"
    assert "raise ValueError(message)" in out.traceback
    assert out.retryable
    out = await run(pool, "boom_not_retried")
    assert out.kind == "error"
    assert not out.retryable  # retry_on=OSError, via task.should_retry()


@pytest.mark.parametrize(
    ("kind", "delay", "retryable"),
    [("retry", 5.0, True), ("snooze", 2.0, True), ("fail", None, False)],
)
async def test_signals_map_to_their_kinds(
    pool: ProcessPool, kind: str, delay: float | None, retryable: bool
) -> None:
    out = await run(pool, "signal", kind=kind)
    assert out.kind == kind
    assert out.delay == delay
    assert out.retryable is retryable
    assert out.error_type.startswith("conveyor.core.signals.")
    if kind == "fail":
        assert out.error_message == "given up"


async def test_bad_arguments_unknown_tasks_and_unencodable_results_are_errors(
    pool: ProcessPool,
) -> None:
    out = await run(pool, "add", a="two", b=3)
    assert (out.kind, out.error_type, out.retryable) == ("error", "msgspec.ValidationError", False)
    out = await pool.run("nowhere.task", b"\x80", JOB, None, Progress(), threading.Event())
    assert (out.kind, out.retryable) == ("error", False)
    assert "not registered" in out.error_message
    out = await run(pool, "unencodable")
    assert (out.kind, out.error_type, out.retryable) == ("error", "TypeError", False)
    assert result(await run(pool, "add", a=1, b=1))[0] == 2  # the children are fine


async def test_timeout_kills_the_child_and_replaces_it(pool1: ProcessPool) -> None:
    progress = Progress()
    out = await run(pool1, "sleepy", timeout=0.5, progress=progress, seconds=60)
    assert out.kind == "timeout"
    assert out.retryable
    killed = int(progress.calls[0][1] or 0)
    new_pid = result(await run(pool1, "pid"))  # waits for the replacement
    assert new_pid != killed
    assert gone(killed)
    assert pool1.pids == [new_pid]


async def test_a_child_that_dies_is_a_crash_and_is_replaced(
    pool: ProcessPool, tmp_path: Path
) -> None:
    before = set(pool.pids)
    out = await run(pool, "die", code=3)
    assert out.kind == "crashed"
    assert "exit code 3" in out.error_message
    assert out.retryable
    # both slots work again: two jobs that wait for each other
    jobs = [run(pool, "rendezvous", directory=str(tmp_path), parties=2, limit=20) for _ in "ab"]
    pids = {result(out) for out in await asyncio.gather(*jobs)}
    assert len(pids) == 2
    assert len(pids & before) == 1  # one child is new
    assert sorted(pool.pids) == sorted(pids)


async def test_large_arguments_and_results_cross_intact(pool: ProcessPool) -> None:
    data = os.urandom(5_000_000)
    assert result(await run(pool, "echo", data=data)) == data


async def test_a_child_that_died_while_idle_is_replaced_before_the_job(pool1: ProcessPool) -> None:
    (victim,) = pool1.pids
    os.kill(victim, signal.SIGKILL)
    while not gone(victim):  # the forkserver reaps it
        await asyncio.sleep(0.01)
    pid = result(await run(pool1, "pid"))  # the job is not charged with the death
    assert pid != victim


async def test_a_failing_on_progress_does_not_fail_the_job(pool1: ProcessPool) -> None:
    async def broken(fraction: float, message: str | None) -> None:
        raise RuntimeError("progress store is down")

    out = await pool1.run(
        "tests.unit._process_tasks.progress_sync",
        CODEC.encode({"steps": 2}),
        JOB,
        None,
        broken,
        threading.Event(),
    )
    assert result(out) == 2


async def test_progress_reaches_on_progress(pool: ProcessPool) -> None:
    progress = Progress()
    assert result(await run(pool, "progress_sync", progress=progress, steps=3)) == 3
    assert progress.calls[-1] == (1.0, "step 3")  # intermediate ones may be coalesced
    assert progress.calls == sorted(progress.calls)
    progress = Progress()
    context = result(await run(pool, "progress_async", progress=progress, steps=4))
    assert context == "job-1/the-task/default/2/5"
    assert progress.calls[-1] == (1.0, "step 4")


async def test_is_cancelled_follows_the_parent(pool1: ProcessPool) -> None:
    progress, cancelled = Progress(), threading.Event()
    job = asyncio.create_task(
        run(pool1, "wait_for_cancel", progress=progress, cancelled=cancelled, limit=30)
    )
    await progress.seen.wait()
    cancelled.set()
    assert result(await job) is True
    assert result(await run(pool1, "is_cancelled_now")) is False  # reset for the next job


async def test_an_asyncio_event_works_as_the_cancel_flag(pool1: ProcessPool) -> None:
    cancelled = asyncio.Event()
    cancelled.set()
    assert result(await run(pool1, "is_cancelled_now", cancelled=cancelled)) is True


async def test_max_jobs_per_child_recycles() -> None:
    pool = ProcessPool(1, MODULES, "msgpack", max_jobs_per_child=2)
    await pool.start()
    try:
        pids = [result(await run(pool, "pid")) for _ in range(5)]
    finally:
        await pool.close(5)
    assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
    assert gone(pids[0])


async def test_two_jobs_run_in_parallel_in_two_children(pool: ProcessPool, tmp_path: Path) -> None:
    jobs = [run(pool, "rendezvous", directory=str(tmp_path), parties=2, limit=20) for _ in "ab"]
    pids = [result(out) for out in await asyncio.gather(*jobs)]
    assert len(set(pids)) == 2


async def test_extra_callers_wait_for_a_free_child(pool1: ProcessPool) -> None:
    outs = await asyncio.gather(*(run(pool1, "add", a=i, b=0) for i in range(5)))
    assert [result(o)[0] for o in outs] == list(range(5))
    assert len({result(o)[1] for o in outs}) == 1


async def test_a_caller_cancelled_mid_job_kills_the_child(pool1: ProcessPool) -> None:
    progress = Progress()
    job = asyncio.create_task(run(pool1, "sleepy", progress=progress, seconds=60))
    await progress.seen.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    killed = int(progress.calls[0][1] or 0)
    assert result(await run(pool1, "pid")) != killed
    assert gone(killed)


async def test_close_stops_every_child() -> None:
    pool = ProcessPool(2, MODULES, "msgpack")
    await pool.start()
    pids = pool.pids
    await pool.close(5)
    assert all(gone(pid) for pid in pids)
    with pytest.raises(RuntimeError, match="closed"):
        await run(pool, "pid")


async def test_close_kills_a_busy_child_after_the_timeout() -> None:
    pool = ProcessPool(1, MODULES, "msgpack")
    await pool.start()
    progress = Progress()
    job = asyncio.create_task(run(pool, "sleepy", progress=progress, seconds=60))
    await progress.seen.wait()
    await pool.close(0.2)
    assert (await job).kind == "crashed"
    assert pool.pids == []


async def test_close_while_a_replacement_starts() -> None:
    pool = ProcessPool(1, MODULES, "msgpack")
    await pool.start()
    assert (await run(pool, "die", code=1)).kind == "crashed"  # a replacement is starting
    loop = asyncio.get_running_loop()
    began = loop.time()
    await pool.close(30)
    assert loop.time() - began < 10  # stopped, not waited out
    assert pool.pids == []


async def test_a_module_that_fails_to_import_is_a_configuration_error() -> None:
    pool = ProcessPool(1, ["tests.unit._no_such_module"], "msgpack")
    with pytest.raises(ConfigurationError, match="_no_such_module"):
        await pool.start()


def test_tasks_defined_in_a_main_script(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, threading
            from conveyor.codec import get_codec
            from conveyor.core.task import task
            from conveyor.worker.process_pool import JobInfoLite, ProcessPool

            @task(process=True)
            def square(x: int) -> int:
                return x * x

            async def main() -> None:
                pool = ProcessPool(1, [], "msgpack")
                await pool.start()
                codec = get_codec("msgpack")
                job = JobInfoLite("1", square.name, "default", 1, 1)
                async def progress(fraction: float, message: str | None) -> None: ...
                out = await pool.run(
                    square.name, codec.encode({"x": 7}), job, 10, progress, threading.Event()
                )
                await pool.close(5)
                print(square.name, out.kind, codec.decode(out.result))

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["__main__.square", "ok", "49"]


async def _learn_it_is_quick(pool: ProcessPool) -> int:
    """Run ``quick_or_die`` a few times, so the pool queues jobs behind it; its pid."""
    pids = {result(await run(pool, "quick_or_die", code=-1)) for _ in range(3)}
    assert len(pids) == 1
    return pids.pop()


async def test_a_short_job_gets_the_next_one_queued_behind_it(pool1: ProcessPool) -> None:
    pid = await _learn_it_is_quick(pool1)
    outs = await asyncio.gather(*(run(pool1, "quick_or_die", code=-1) for _ in range(50)))
    assert {result(o) for o in outs} == {pid}
    assert pool1.queued_handoffs > 0  # some went to the busy child, not after a round trip


async def test_a_job_queued_behind_one_that_kills_the_child_runs_elsewhere(
    pool1: ProcessPool, tmp_path: Path
) -> None:
    first = await _learn_it_is_quick(pool1)
    before = pool1.queued_handoffs
    marker = tmp_path / "ran"
    dying, queued = await asyncio.gather(
        run(pool1, "quick_or_die", code=7),
        run(pool1, "quick_or_die", code=-1, marker=str(marker)),
    )
    assert pool1.queued_handoffs == before + 1  # the second was queued behind the first
    assert dying.kind == "crashed"
    assert "exit code 7" in dying.error_message
    assert result(queued) != first  # ran once, in the replacement child
    assert marker.exists()


async def test_a_queued_job_whose_caller_gives_up_is_skipped(
    pool1: ProcessPool, tmp_path: Path
) -> None:
    await _learn_it_is_quick(pool1)
    marker = tmp_path / "ran"
    progress = Progress()
    head = asyncio.create_task(run(pool1, "wait_for_cancel", progress=progress, limit=30))
    await progress.seen.wait()
    # the head is running but not known to be quick: nothing is queued behind it
    assert pool1.queued_handoffs == 0
    head.cancel()
    with pytest.raises(asyncio.CancelledError):
        await head
    pid = await _learn_it_is_quick(pool1)
    for _ in range(3):  # ~10 ms: short enough to queue behind, long enough to cancel in
        assert result(await run(pool1, "sleepy", seconds=0.01)) == pid
    before = pool1.queued_handoffs
    blocker = asyncio.create_task(run(pool1, "sleepy", seconds=0.01))
    queued = asyncio.create_task(run(pool1, "quick_or_die", code=-1, marker=str(marker)))
    await asyncio.sleep(0)  # both handed out: the second queued behind the first
    assert pool1.queued_handoffs == before + 1
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    assert result(await blocker) == pid
    assert result(await run(pool1, "quick_or_die", code=-1)) == pid  # the child carries on
    assert not marker.exists()


async def test_a_long_job_gets_nothing_queued_behind_it(pool: ProcessPool) -> None:
    assert result(await run(pool, "sleepy", seconds=0.1))  # now known to take ~100 ms
    progress = Progress()
    long = asyncio.create_task(run(pool, "sleepy", progress=progress, seconds=3))
    await progress.seen.wait()
    outs = await asyncio.gather(*(run(pool, "add", a=i, b=1) for i in range(20)))
    assert [result(o)[0] for o in outs] == list(range(1, 21))
    assert not long.done()  # none of them waited for the long job
    assert result(await long)


async def test_a_worker_with_task_modules_starts_its_pool_before_it_is_ready() -> None:
    import tests.unit._process_tasks  # noqa: F401  (as `conveyor worker` imports them)
    from conveyor import Conveyor

    app = Conveyor("memory://")
    worker = app.worker(modules=tuple(MODULES), process_pool_size=1)
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        pool = worker.executors._processes
        assert pool is not None
        assert len(pool.pids) == 1
    finally:
        worker.stop()
        await running
    assert pool.pids == []  # stopped with the worker


async def test_an_embedded_worker_starts_no_pool_until_a_process_job_comes() -> None:
    from conveyor import Conveyor

    app = Conveyor("memory://")
    worker = app.worker(process_pool_size=1)  # no task modules named
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.wait_for(worker.ready.wait(), 60)
        assert worker.executors._processes is None
    finally:
        worker.stop()
        await running


async def test_every_job_runs_once_while_children_keep_dying(
    pool: ProcessPool, tmp_path: Path
) -> None:
    await _learn_it_is_quick(pool)
    jobs = [
        run(pool, "quick_or_die", code=3 if i % 25 == 7 else -1, marker=str(tmp_path / str(i)))
        for i in range(200)
    ]
    outs = await asyncio.gather(*jobs)
    kinds = [o.kind for o in outs]
    dying = [i for i in range(200) if i % 25 == 7]
    assert [i for i, k in enumerate(kinds) if k == "crashed"] == dying
    assert all(kinds[i] == "ok" for i in range(200) if i not in dying)
    assert sorted(map(int, os.listdir(tmp_path))) == list(range(200))  # once each
    assert pool.queued_handoffs > 0
