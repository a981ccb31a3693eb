"""The Redis driver when connections die or the server restarts mid-run.

Each test starts a private ``redis-server`` and kills its clients or the server itself
while a worker consumes and a producer dispatches. What must hold (docs/redis.md):

* producers and workers reconnect with backoff and carry on; no worker stops consuming;
* with persistence (AOF, fsync always), no job acknowledged to its producer is lost;
* without persistence, a job acknowledged before the restart is either run or reported
  (its handle raises ``JobNotFoundError``), never waited on forever.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from conveyor import Conveyor, JobNotFoundError, TaskHandle
from conveyor.exceptions import BrokerUnavailableError
from conveyor.worker import Worker
from tests.contract.redis_server import RedisServer

QUEUE = "reconnect"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    instance = RedisServer(tmp_path)
    try:
        yield instance
    finally:
        instance.kill()


@pytest.fixture
def durable_server(tmp_path: Path) -> Iterator[RedisServer]:
    instance = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    try:
        yield instance
    finally:
        instance.kill()


def make_app(server: RedisServer) -> tuple[Conveyor, Any]:
    app = Conveyor(
        server.url,
        default_queue=QUEUE,
        concurrency=20,
        lease_seconds=2.0,
        idle_poll_max=0.1,
        shutdown_grace=5.0,
    )
    ran: list[int] = []

    @app.task
    async def work(n: int) -> int:
        await asyncio.sleep(0.002)
        ran.append(n)
        return n

    app.ran = ran  # type: ignore[attr-defined]
    return app, work


@asynccontextmanager
async def running(app: Conveyor, count: int = 1) -> AsyncIterator[list[Worker]]:
    workers = [app.worker() for _ in range(count)]
    runs = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield workers
    finally:
        for w in workers:
            w.stop()
        await asyncio.wait_for(asyncio.gather(*runs), 20)


async def outcome(handle: TaskHandle[Any]) -> str:
    """``"ran"`` or ``"lost"`` (reported missing), within a bound: never a hang."""
    try:
        await handle.result(timeout=10)
    except JobNotFoundError:
        return "lost"
    return "ran"


async def test_killed_connections_are_reconnected(server: RedisServer) -> None:
    app, work = make_app(server)
    async with app, running(app, count=2):
        handles = []
        for n in range(300):
            handles.append(await work(n).dispatch())
            if n % 60 == 30:
                assert server.kill_clients("normal") > 0  # producer's and workers' pools
                server.kill_clients("pubsub")  # the listeners that wake idle workers
            await asyncio.sleep(0)
        results = await asyncio.gather(*(h.result(timeout=15) for h in handles))
    assert sorted(results) == list(range(300))
    assert set(app.ran) == set(range(300))  # type: ignore[attr-defined]


async def test_idle_workers_are_woken_after_their_listener_was_killed(
    server: RedisServer,
) -> None:
    app, work = make_app(server)
    async with app, running(app):
        assert await (await work(1).dispatch()).result(timeout=5) == 1
        for _ in range(3):
            server.kill_clients("pubsub")
            await asyncio.sleep(0.2)  # idle: waiting on the broker
            handle = await work(2).dispatch()
            assert await handle.result(timeout=5) == 2


async def test_a_restart_without_persistence_loses_jobs_but_not_workers(
    server: RedisServer,
) -> None:
    app, work = make_app(server)
    async with app, running(app, count=2):
        before = [await work(n).dispatch() for n in range(100)]
        ran = app.ran  # type: ignore[attr-defined]
        async with asyncio.timeout(5):
            while len(ran) < 20:
                await asyncio.sleep(0.001)
        server.restart()  # a crash with no persistence: the data is gone
        # producers carry on at once: their next calls reconnect
        after = await app.dispatch_many([work(n) for n in range(100, 200)])
        after += [await work(n).dispatch() for n in range(200, 250)]
        verdicts = await asyncio.gather(*(outcome(h) for h in before))
        # results were in the lost data too: the handles report it rather than hang
        assert set(verdicts) <= {"ran", "lost"}
        assert await asyncio.gather(*(h.result(timeout=15) for h in after)) == list(range(100, 250))
    assert {n for n, v in zip(range(100), verdicts, strict=True) if v == "ran"} <= set(ran)


async def test_a_restart_with_aof_loses_no_acknowledged_job(durable_server: RedisServer) -> None:
    app, work = make_app(durable_server)
    async with app:
        handles = await app.dispatch_many([work(n) for n in range(200)])
        handles += [await work(n).dispatch() for n in range(200, 250)]
        durable_server.restart()  # SIGKILL, then the AOF is replayed
        async with running(app):
            results = await asyncio.gather(*(h.result(timeout=15) for h in handles))
    assert results == list(range(250))


async def test_a_restart_mid_run_with_aof_runs_every_job(durable_server: RedisServer) -> None:
    app, work = make_app(durable_server)
    async with app, running(app, count=2):
        handles = [await work(n).dispatch() for n in range(150)]
        durable_server.restart()
        handles += [await work(n).dispatch() for n in range(150, 300)]
        results = await asyncio.gather(*(h.result(timeout=20) for h in handles))
    assert results == list(range(300))
    # jobs that were running when the server died may run again (at least once)
    assert set(app.ran) == set(range(300))  # type: ignore[attr-defined]


async def test_an_outage_longer_than_the_retries_is_an_error_then_work_resumes(
    server: RedisServer,
) -> None:
    app = Conveyor(f"{server.url}?retries=1", default_queue=QUEUE, idle_poll_max=0.1)
    ran: list[int] = []

    @app.task
    async def step(n: int) -> int:
        ran.append(n)
        return n

    async with app, running(app, count=2):
        assert await (await step(1).dispatch()).result(timeout=5) == 1
        server.kill()
        with pytest.raises(BrokerUnavailableError):
            await step(2).dispatch()
        await asyncio.sleep(0.5)  # the workers fail to reserve, back off, and keep trying
        server.start()
        handle = await step(3).dispatch()
        assert await handle.result(timeout=10) == 3
    assert ran == [1, 3]


async def test_every_call_in_an_outage_is_a_broker_unavailable_error(server: RedisServer) -> None:
    """Not only the first: once the scripts' spare connections are gone, opening a new one
    failed with redis-py's own ConnectionError, which a producer catching
    BrokerUnavailableError (as docs/redis.md says to) did not catch."""
    app = Conveyor(f"{server.url}?retries=1", default_queue=QUEUE)

    @app.task
    async def step(n: int) -> int:
        return n

    async with app:
        await step(1).dispatch()
        server.kill()
        for n in range(2, 5):
            with pytest.raises(BrokerUnavailableError, match="unreachable"):
                await step(n).dispatch()
        with pytest.raises(BrokerUnavailableError, match="unreachable"):
            await app.driver.reserve([QUEUE], 10, 30.0, "w")
        server.start()
        assert await (await step(5).dispatch()).status() == "queued"


async def test_a_shutdown_while_redis_is_down_ends_after_the_grace(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The jobs finish, their acks can't be sent: the worker stops anyway once the grace
    (at least ACK_GRACE) is over, says how many outcomes it could not send, and those
    jobs run again when their leases expire. It used to retry the acks for ever."""
    from conveyor.worker import worker as worker_module

    monkeypatch.setattr(worker_module, "ACK_GRACE", 0.5)
    app = Conveyor(f"{server.url}?retries=1", default_queue=QUEUE, shutdown_grace=0.2)
    started, release = asyncio.Event(), asyncio.Event()

    @app.task
    async def hold(n: int) -> int:
        started.set()
        await release.wait()
        return n

    async with app:
        await hold(1).dispatch()
        worker = app.worker(concurrency=2)
        run = asyncio.create_task(worker.run())
        await asyncio.wait_for(started.wait(), 10)
        server.kill()
        release.set()  # the job finishes while the broker is away
        worker.stop()
        stats = await asyncio.wait_for(run, 10)
    assert stats.reserved == 1
    assert stats.succeeded == 0  # counted once acknowledged
    assert "worker.acks_unsent 1 outcomes" in caplog.text
