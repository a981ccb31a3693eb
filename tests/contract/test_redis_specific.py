"""What only the Redis driver promises: reclaiming leases exactly once under concurrent
reservers, key prefixes and hash tags, no keyspace scans, NOSCRIPT recovery, dispatch
coalescing, calls from other event loops, garbage in the broker, and its URLs.

Most tests run on the shared Redis under a key prefix of their own; those that look at
server-wide counters or flush scripts start a private ``redis-server``.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from conveyor import Conveyor, JobStatus, task
from conveyor.core import dispatch as core_dispatch
from conveyor.core.job import ErrorInfo
from conveyor.drivers import create_driver
from conveyor.drivers.base import Outcome, OutcomeKind, Reserved, SupportsCompleteAndReserve
from conveyor.drivers.redis import RedisDriver
from conveyor.exceptions import BrokerUnavailableError, ConfigurationError, DispatchError
from tests.contract.conftest import require_service
from tests.contract.helpers import (
    LEASE,
    done,
    enqueue,
    new_job,
    reserve_one,
    stats_for,
    status_of,
)
from tests.contract.redis_isolation import REDIS_URL, private_prefix, with_prefix
from tests.contract.redis_server import RedisServer

QUEUE = "redis-specific"


@pytest.fixture
async def url() -> AsyncIterator[str]:
    """The shared Redis, under a key prefix private to the test."""
    base = os.environ.get("CONVEYOR_TEST_REDIS_URL") or REDIS_URL
    require_service("redis", base)
    async with private_prefix(base) as private:
        yield private


@pytest.fixture
async def driver(url: str) -> AsyncIterator[RedisDriver]:
    instance = RedisDriver.from_url(url)
    await instance.connect()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    instance = RedisServer(tmp_path)
    try:
        yield instance
    finally:
        instance.kill()


async def _reserve_all(drivers: list[RedisDriver], queue: str, batch: int) -> list[Reserved]:
    """Every driver reserves in a loop, concurrently, until the queue is empty."""

    async def reserver(d: RedisDriver, worker: str) -> list[Reserved]:
        mine: list[Reserved] = []
        while got := await d.reserve([queue], batch, LEASE, worker):
            mine.extend(got)
        return mine

    results = await asyncio.gather(*(reserver(d, f"w{i}") for i, d in enumerate(drivers)))
    return [r for part in results for r in part]


# -- leases reclaimed exactly once --------------------------------------------------------


async def test_expired_leases_are_reclaimed_exactly_once_by_concurrent_reservers(
    url: str, driver: RedisDriver
) -> None:
    ids = set(await enqueue(driver, QUEUE, 2000))
    first: list[Reserved] = []
    while got := await driver.reserve([QUEUE], 500, 0.2, "doomed"):
        first.extend(got)
    assert {r.id for r in first} == ids
    await asyncio.sleep(0.25)  # every lease has run out; nobody renewed

    others = [RedisDriver.from_url(url) for _ in range(5)]
    try:
        got = await _reserve_all([driver, *others], QUEUE, 50)
    finally:
        for other in others:
            await other.close()
    counts = Counter(r.id for r in got)
    assert len(got) == 2000, f"{len(got) - len(counts)} duplicated deliveries"
    assert set(counts) == ids
    assert {(r.attempts, r.deaths) for r in got} == {(2, 1)}
    assert await driver.reserve([QUEUE], 100, LEASE, "late") == []
    stats = await stats_for(driver, QUEUE)
    assert (stats[JobStatus.ACTIVE], stats[JobStatus.QUEUED]) == (2000, 0)


async def test_delayed_jobs_are_delivered_exactly_once_by_concurrent_reservers(
    url: str, driver: RedisDriver
) -> None:
    jobs = [new_job(QUEUE, delay=0.2) for _ in range(2000)]
    await driver.enqueue(jobs)
    assert await driver.reserve([QUEUE], 100, LEASE, "early") == []
    await asyncio.sleep(0.25)

    others = [RedisDriver.from_url(url) for _ in range(5)]
    try:
        got = await _reserve_all([driver, *others], QUEUE, 50)
    finally:
        for other in others:
            await other.close()
    assert len(got) == 2000
    assert {r.id for r in got} == {j.id for j in jobs}
    assert {r.attempts for r in got} == {1}


# -- keys -----------------------------------------------------------------------------------


async def test_prefixes_keep_apps_apart(url: str, driver: RedisDriver) -> None:
    other_url = with_prefix(url, driver.prefix + "-other")
    other = RedisDriver.from_url(other_url)
    try:
        (mine,) = await enqueue(driver, QUEUE)
        (theirs,) = await enqueue(other, QUEUE)
        assert await other.get_job(mine) is None
        assert [r.id for r in await other.reserve([QUEUE], 10, LEASE, "w")] == [theirs]
        assert (await stats_for(driver, QUEUE))[JobStatus.QUEUED] == 1
        assert await other.purge(JobStatus.ACTIVE) == 1
        assert [r.id for r in await driver.reserve([QUEUE], 10, LEASE, "w")] == [mine]
    finally:
        await other.close()
        from tests.contract.redis_isolation import drop_prefix

        await drop_prefix(other_url, other.prefix)


async def test_every_key_carries_the_prefix_hash_tag_and_nothing_scans(
    server: RedisServer,
) -> None:
    app = Conveyor(f"{server.url}?prefix=shop", default_queue="orders", concurrency=5)
    ran: list[int] = []

    @app.task(max_attempts=1)
    async def work(n: int) -> int:
        ran.append(n)
        if n % 3 == 0:
            raise ValueError(n)
        return n

    async with app:
        handles = await app.dispatch_many([work(n) for n in range(30)])
        await work(99).delay(60).dispatch()
        stats = await app.worker(burst=True).run()
        assert stats.succeeded == 20
        assert stats.dead == 10
        assert await handles[1].result(timeout=5) == 1
        await app.stats()
        assert len(await app.dead_letters()) == 10
        assert await app.retry_dead(handles[0].id) == 1
        assert await app.purge_dead() == 9
        assert await app.driver.list_jobs(JobStatus.SCHEDULED) != []

    with server.client() as client:
        keys = [k.decode() for k in client.keys("*")]
    assert keys
    assert all(k.startswith("{shop}:") for k in keys), keys  # one hash tag: one slot
    calls = server.command_calls()
    assert "keys" not in calls or calls["keys"] == 1  # the test's own KEYS above
    assert "scan" not in calls


# -- scripts and connections ----------------------------------------------------------------


async def test_scripts_are_sent_again_after_script_flush(server: RedisServer) -> None:
    driver = RedisDriver.from_url(server.url)
    await driver.connect()
    try:
        (job_id,) = await enqueue(driver, QUEUE)
        with server.client() as client:
            client.script_flush()
        job = await reserve_one(driver, QUEUE)
        assert job.id == job_id
        assert await driver.complete([done(job, result=b"r", result_ttl=60.0)]) == [True]
        calls = server.command_calls()
        assert calls["eval"] >= 1  # the fallback that reloaded them
    finally:
        await driver.close()


async def test_concurrent_dispatches_are_coalesced(url: str) -> None:
    app = Conveyor(url, default_queue=QUEUE)

    @app.task
    async def noop(n: int) -> None:
        return None

    async with app:
        driver = app.driver
        assert isinstance(driver, RedisDriver)
        await noop(0).dispatch()
        assert driver.enqueue_writes == 1  # a lone dispatch goes at once

        handles = await asyncio.gather(*(noop(n).dispatch() for n in range(1, 201)))
        writes = driver.enqueue_writes - 1
        assert 1 <= writes < 50, writes
        assert len({h.id for h in handles}) == 200
        assert (await stats_for(driver, QUEUE))[JobStatus.QUEUED] == 201


async def test_a_bad_job_fails_only_its_own_dispatch(driver: RedisDriver) -> None:
    good = [new_job(QUEUE) for _ in range(3)]
    bad = new_job(QUEUE, priority=12)
    results = await asyncio.gather(
        *(driver.enqueue([j]) for j in good[:2]),
        driver.enqueue([bad]),
        driver.enqueue([good[2]]),
        return_exceptions=True,
    )
    assert isinstance(results[2], DispatchError)
    assert [r for i, r in enumerate(results) if i != 2] == [None, None, None]
    assert {r.id for r in await driver.reserve([QUEUE], 10, LEASE, "w")} == {j.id for j in good}


async def test_a_retried_enqueue_does_not_duplicate(driver: RedisDriver) -> None:
    job = new_job(QUEUE)
    await driver.enqueue([job])
    await driver.enqueue([job])  # what a retry after a lost reply sends
    assert len(await driver.reserve([QUEUE], 10, LEASE, "w")) == 1


async def test_a_retried_complete_answers_true_once_applied(driver: RedisDriver) -> None:
    await enqueue(driver, QUEUE, 2)
    a, b = await driver.reserve([QUEUE], 2, LEASE, "w")
    outcomes = [done(a, result=b"1", result_ttl=60.0), done(b, OutcomeKind.RETRY)]
    assert await driver.complete(outcomes) == [True, True]
    assert await driver.complete(outcomes) == [True, True]  # same tokens: already applied
    again = await reserve_one(driver, QUEUE)
    assert again.id == b.id
    assert await driver.complete([done(b)]) == [False]  # the old token is dead now


async def test_calls_from_another_event_loop(driver: RedisDriver) -> None:
    (job_id,) = await enqueue(driver, QUEUE)

    def elsewhere() -> tuple[Any, ...]:
        async def calls() -> tuple[Any, ...]:
            info = await driver.get_job(job_id)
            await driver.enqueue([new_job(QUEUE)])
            await driver.wait_for_work([QUEUE], 0.05)
            got = await driver.reserve([QUEUE], 10, LEASE, "w")
            return info, got

        return asyncio.run(calls())

    info, got = await asyncio.to_thread(elsewhere)
    assert info is not None
    assert info.status is JobStatus.QUEUED
    assert len(got) == 2
    assert (await stats_for(driver, QUEUE))[JobStatus.ACTIVE] == 2


# -- wake-ups -------------------------------------------------------------------------------


async def test_an_idle_worker_starts_a_job_at_once_and_polls_rarely(
    server: RedisServer,
) -> None:
    app = Conveyor(server.url, default_queue=QUEUE)
    started: list[float] = []

    @app.task
    async def ping() -> None:
        started.append(time.monotonic())

    async with app:
        worker = app.worker(concurrency=4)
        run = asyncio.create_task(worker.run())
        try:
            await asyncio.sleep(0.3)  # idle: the worker's poll interval has grown
            before = server.command_calls().get("evalsha", 0)
            await asyncio.sleep(1.0)
            idle_calls = server.command_calls().get("evalsha", 0) - before
            assert idle_calls <= 12, f"{idle_calls} calls in one idle second"

            latencies = []
            for _ in range(5):
                sent = time.monotonic()
                await ping().dispatch()
                async with asyncio.timeout(2):
                    while len(started) < len(latencies) + 1:
                        await asyncio.sleep(0.0005)
                latencies.append(started[-1] - sent)
                await asyncio.sleep(0.3)  # idle again
            assert sorted(latencies)[2] < 0.05, latencies
        finally:
            worker.stop()
            await asyncio.wait_for(run, 10)


async def test_garbage_on_the_wake_up_channel_is_ignored(url: str, driver: RedisDriver) -> None:
    await driver.wait_for_work([QUEUE], 0.01)  # the listener is up
    with redis.Redis.from_url(url.partition("?")[0]) as client:
        client.publish(f"{{{driver.prefix}}}:ev:work", b"\xc1 not msgpack")
    waiter = asyncio.create_task(driver.wait_for_work([QUEUE], 5.0))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await enqueue(driver, QUEUE)
    await asyncio.wait_for(waiter, 1.0)


# -- garbage in the broker ------------------------------------------------------------------


async def test_a_job_deleted_behind_the_drivers_back_is_skipped(
    url: str, driver: RedisDriver
) -> None:
    lost, kept = await enqueue(driver, QUEUE, 2)
    with redis.Redis.from_url(url.partition("?")[0]) as client:
        assert client.delete(f"{{{driver.prefix}}}:j:{lost}") == 1
    assert [r.id for r in await driver.reserve([QUEUE], 10, LEASE, "w")] == [kept]
    assert await driver.get_job(lost) is None
    assert await driver.cancel(lost) is False
    assert await driver.list_jobs(JobStatus.QUEUED, queue=QUEUE) == []


async def test_binary_payloads_results_and_errors_round_trip(driver: RedisDriver) -> None:
    payload = bytes(range(256)) * 3
    job = new_job(QUEUE, payload=payload)
    await driver.enqueue([job])
    (got,) = await driver.reserve([QUEUE], 1, LEASE, "w")
    assert got.payload == payload
    result = b"\x00\xff" + bytes(range(255, -1, -1))
    assert await driver.complete([done(got, result=result, result_ttl=60.0)]) == [True]
    info = await driver.get_job(job.id)
    assert info is not None
    assert (info.result, info.payload) == (result, payload)


# -- URLs and the factory ---------------------------------------------------------------------


def test_url_options() -> None:
    driver = create_driver("redis://user:secret@example.com:6380/3?prefix=app1&retries=2")
    assert isinstance(driver, RedisDriver)
    assert driver.prefix == "app1"
    assert driver.options.retries == 2
    assert driver.options.base == "{app1}:"
    assert "prefix" not in driver.options.url
    assert "secret" not in repr(driver._where)
    default = create_driver("redis://localhost")
    assert isinstance(default, RedisDriver)
    assert default.prefix == "conveyor"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("redis://localhost/0?prefix=a{b}", "bad key prefix"),
        ("redis://localhost/0?colour=blue", "unknown option 'colour'"),
        ("redis://localhost/0?retries=many", "retries must be a whole number"),
        ("redis://localhost/db", "bad database"),
        ("redis:///0", "no host"),
        # redis-py's own numbers: they failed at the first call, as an outage or a ValueError
        ("redis://localhost/0?socket_timeout=-1", "socket_timeout must be a number above 0"),
        ("redis://localhost/0?socket_connect_timeout=soon", "socket_connect_timeout must be"),
        ("redis://localhost/0?health_check_interval=-5", "health_check_interval must be"),
        ("redis://localhost/0?db=x", "db must be a whole number"),
        ("redis://localhost/0?socket_read_size=0", "socket_read_size is too small"),
        ("redis://localhost/0?protocol=9", "protocol must be 2 or 3"),
    ],
)
def test_bad_urls_are_one_clear_error(bad: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_driver(bad)


async def test_tls_verifies_certificates_by_default() -> None:
    driver = RedisDriver.from_url("rediss://redis.example.com:6380/0")
    from conveyor.drivers._redis.link import Link

    link = Link(driver.options, driver._where)
    try:
        kwargs = link.pool.connection_kwargs
        assert kwargs.get("ssl_cert_reqs", "required") == "required"
        assert kwargs.get("ssl_check_hostname", True) is True
        assert link.pool.connection_class.__name__ == "SSLConnection"
    finally:
        await link.close()


async def test_unreachable_server_is_a_broker_unavailable_error(tmp_path: Path) -> None:
    from tests.contract.redis_server import _free_port

    driver = RedisDriver.from_url(f"redis://127.0.0.1:{_free_port()}/0?retries=0")
    with pytest.raises(BrokerUnavailableError, match="unreachable"):
        await driver.connect()


def test_missing_extra_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_redis(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "redis" or name.startswith("redis."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_redis)
    monkeypatch.delitem(__import__("sys").modules, "redis")
    with pytest.raises(ConfigurationError, match=r"pip install 'conveyor\[redis\]'"):
        create_driver("redis://localhost:6379/0")


# -- through the app ---------------------------------------------------------------------------


async def test_handles_wait_on_pub_sub_not_polling(server: RedisServer) -> None:
    app = Conveyor(server.url, default_queue=QUEUE)

    @task
    async def slow(n: int) -> int:
        await asyncio.sleep(0.3)
        return n

    previous = core_dispatch._default_app
    core_dispatch.set_default_app(app)
    try:
        async with app:
            handle = await slow(7).dispatch()
            worker = app.worker(concurrency=2)
            run = asyncio.create_task(worker.run())
            try:
                before = server.command_calls().get("evalsha", 0)
                assert await handle.result(timeout=5) == 7
                # the worker's own calls, a few polls by the waiter, not one per millisecond
                assert server.command_calls().get("evalsha", 0) - before < 40
            finally:
                worker.stop()
                await asyncio.wait_for(run, 10)
    finally:
        core_dispatch.set_default_app(previous)


async def test_an_evicting_redis_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    evicting = RedisServer(tmp_path, "--maxmemory-policy", "allkeys-lru")
    try:
        driver = RedisDriver.from_url(evicting.url)
        with caplog.at_level("WARNING", logger="conveyor.redis"):
            await driver.connect()
        await driver.close()
    finally:
        evicting.kill()
    assert "allkeys-lru" in caplog.text
    assert "noeviction" in caplog.text


async def test_a_dead_letter_deleted_behind_the_drivers_back_does_not_stall_retry_all(
    url: str, driver: RedisDriver
) -> None:
    ids = await enqueue(driver, QUEUE, 3)
    jobs = await driver.reserve([QUEUE], 3, LEASE, "w")
    await driver.complete([done(j, OutcomeKind.DEAD) for j in jobs])
    with redis.Redis.from_url(url.partition("?")[0]) as client:
        client.delete(f"{{{driver.prefix}}}:j:{ids[0]}")
    assert await asyncio.wait_for(driver.retry_dead(None, queue=QUEUE), 5) == 2
    assert await driver.list_jobs(JobStatus.DEAD, queue=QUEUE) == []


async def test_complete_and_reserve_applies_the_outcomes_first(driver: RedisDriver) -> None:
    """The optional power (one script call): outcomes as ``complete`` would apply them,
    then a reserve that already sees their effect (a retried job is due again at once)."""
    assert isinstance(driver, SupportsCompleteAndReserve)
    queue = QUEUE
    ids = await enqueue(driver, queue, 4)
    first, second, third = await driver.reserve([queue], 3, LEASE, "w1")
    outcomes = [
        done(first, result=b"r", result_ttl=60.0),
        done(second, OutcomeKind.RETRY, error=ErrorInfo("ValueError", "boom")),
        Outcome(third.id, third.token + "0", OutcomeKind.SUCCEEDED),  # not its lease
    ]
    acked, jobs = await driver.complete_and_reserve(outcomes, [queue], 10, LEASE, "w1")
    assert acked == [True, True, False]
    assert {j.id: j.attempts for j in jobs} == {ids[1]: 2, ids[3]: 1}
    info = await driver.get_job(ids[0])
    assert info is not None
    assert (info.status, info.result) == (JobStatus.SUCCEEDED, b"r")
    assert await status_of(driver, ids[2]) is JobStatus.ACTIVE  # the fenced outcome did nothing

    # either half may be empty
    assert await driver.complete_and_reserve([], [queue], 10, LEASE, "w1") == ([], [])
    rest = [done(j, result_ttl=60.0) for j in [*jobs, third]]
    assert await driver.complete_and_reserve(rest, [queue], 0, LEASE, "w1") == ([True] * 3, [])
    assert [await status_of(driver, i) for i in ids[1:]] == [JobStatus.SUCCEEDED] * 3


async def test_a_busy_worker_sends_its_acks_with_its_reserves(url: str) -> None:
    """The worker uses the one-call power on Redis, and every job still runs once."""
    app = Conveyor(url, default_queue=QUEUE, concurrency=4)
    ran: Counter[int] = Counter()

    @app.task
    async def step(n: int) -> int:
        ran[n] += 1
        await asyncio.sleep(0.001)
        return n

    async with app:
        handles = await app.dispatch_many([step(n) for n in range(200)])
        driver: Any = app.driver
        real = driver.complete_and_reserve
        along: list[int] = []

        async def counted(outcomes: Any, *rest: Any) -> Any:
            along.append(len(outcomes))
            return await real(outcomes, *rest)

        driver.complete_and_reserve = counted  # counts the calls; the real call is made
        stats = await app.worker(burst=True).run()
        assert stats.succeeded == 200
        assert await asyncio.gather(*(h.result(timeout=5) for h in handles)) == list(range(200))
    assert set(ran.values()) == {1}
    assert along, "no ack rode along with a reserve"
    assert sum(along) >= 50, along  # most acks go with the reserves of a busy worker


async def test_only_a_process_that_waits_for_results_hears_every_finished_job(url: str) -> None:
    """Every finished job is a message on the done channel: a worker that never waits for
    results must not subscribe to it (N workers would each read every other's)."""
    app = Conveyor(url, default_queue=QUEUE)
    driver: Any = app.driver

    @app.task
    async def echo(n: int) -> int:
        return n

    async def listeners(channel: bytes) -> int:
        reply = await driver._link.command("PUBSUB", "NUMSUB", channel)
        return int(reply[1])

    async with app:
        worker = app.worker(concurrency=4)
        run = asyncio.create_task(worker.run())
        try:
            await worker.ready.wait()
            for _ in range(100):  # the worker's listener starts in the background
                if await listeners(driver.options.cancel_channel):
                    break
                await asyncio.sleep(0.01)
            assert await listeners(driver.options.cancel_channel) == 1
            assert await listeners(driver.options.done_channel) == 0
            handle = await echo(7).dispatch()
            assert await handle.result(timeout=5) == 7  # now this process waits for results
            assert await listeners(driver.options.done_channel) == 1
        finally:
            worker.stop()
            await run


@pytest.mark.parametrize("ticks", range(6))
async def test_closing_right_after_the_listener_started_does_not_hang(url: str, ticks: int) -> None:
    """redis-py can swallow a cancel that lands while a subscription is being set up: the
    listener must still stop (``conveyor worker --burst`` on an empty queue hung in close)."""
    driver = RedisDriver.from_url(url)
    await driver.connect()
    driver.watch_cancels(lambda _job_id: None)  # starts the listener, as a worker does
    for _ in range(ticks):
        await asyncio.sleep(0)
    started = time.monotonic()
    await asyncio.wait_for(driver.close(), 3.0)
    assert time.monotonic() - started < 1.0


async def test_an_empty_burst_worker_exits_at_once(url: str) -> None:
    app = Conveyor(url, default_queue=QUEUE)
    started = time.monotonic()
    async with app:
        stats = await asyncio.wait_for(app.worker(burst=True).run(), 3.0)
    assert stats.reserved == 0
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(
    ("where", "damage"),
    [
        ("ready", "no payload"),
        ("ready", "no queue"),
        ("ready", "not a hash"),
        ("delayed", "no priority"),
        ("delayed", "no run_at"),
        ("delayed", "bad sequence"),
        ("delayed", "not a hash"),
        ("expired", "no sequence"),
    ],
)
async def test_a_broken_job_record_goes_to_the_dead_letters_and_nothing_stalls(
    url: str, driver: RedisDriver, where: str, damage: str
) -> None:
    """A job hash that a bug or a hand-made job left incomplete must not stop every
    reserve with a Lua error (one such job stopped every queue of every worker)."""
    if where == "delayed":
        [victim] = await enqueue(driver, QUEUE, delay=600)
    else:
        [victim] = await enqueue(driver, QUEUE)
    if where == "expired":
        await driver.reserve([QUEUE], 1, 0.05, "w")
        await asyncio.sleep(0.1)
    [bystander] = await enqueue(driver, QUEUE)
    key = f"{{{driver.prefix}}}:j:{victim}"
    with redis.Redis.from_url(url.partition("?")[0]) as client:
        if where == "delayed":  # due now
            client.zadd(f"{{{driver.prefix}}}:q:{QUEUE}:d", {victim: 0})
        if damage == "not a hash":
            client.delete(key)
            client.set(key, b"garbage")
        else:
            field, value = {
                "no payload": ("p", None),
                "no queue": ("q", None),
                "bad sequence": ("sq", b"x"),
                "no priority": ("pr", None),
                "no run_at": ("ra", None),
                "no sequence": ("sq", None),
            }[damage]
            if value is None:
                client.hdel(key, field)
            else:
                client.hset(key, field, value)

    assert [r.id for r in await driver.reserve([QUEUE], 10, LEASE, "w")] == [bystander]
    info = await driver.get_job(victim)
    assert info is not None
    assert info.status is JobStatus.DEAD
    assert info.error is not None
    assert info.error.type == "DecodeError"
    assert "broken" in info.error.message
    assert [j.id for j in await driver.list_jobs(JobStatus.DEAD, queue=QUEUE)] == [victim]
    counts = (await stats_for(driver, QUEUE)).counts
    assert counts[JobStatus.DEAD] == 1
    if damage != "not a hash":  # else its state is unknown, as for a deleted job
        assert counts[JobStatus.SCHEDULED] == 0
    if damage == "not a hash":  # what was there is kept for a human to look at
        with redis.Redis.from_url(url.partition("?")[0]) as client:
            assert client.get(f"{key}:broken") == b"garbage"


async def test_a_running_job_whose_record_lost_fields_can_still_finish(
    url: str, driver: RedisDriver
) -> None:
    await enqueue(driver, QUEUE, 2)
    a, b = await driver.reserve([QUEUE], 2, LEASE, "w")
    with redis.Redis.from_url(url.partition("?")[0]) as client:
        for job in (a, b):
            client.hdel(f"{{{driver.prefix}}}:j:{job.id}", "pr", "sq")
    outcomes = [done(a, OutcomeKind.RETRY), done(b, OutcomeKind.DEAD)]
    assert await driver.complete(outcomes) == [True, True]
    assert (await reserve_one(driver, QUEUE)).id == a.id
    assert [j.id for j in await driver.list_jobs(JobStatus.DEAD, queue=QUEUE)] == [b.id]


@pytest.mark.parametrize("kind", ["r", "d", "a"])
async def test_a_queue_key_of_another_type_does_not_stop_the_other_queues(
    url: str, driver: RedisDriver, kind: str
) -> None:
    """One queue's sorted set overwritten with a string made every reserve fail with
    WRONGTYPE: a worker on that queue and others consumed nothing, on any queue."""
    broken = f"{QUEUE}-broken"
    [job] = await enqueue(driver, QUEUE)
    with redis.Redis.from_url(url.partition("?")[0]) as client:
        client.set(f"{{{driver.prefix}}}:q:{broken}:{kind}", b"garbage")
    assert [r.id for r in await driver.reserve([broken, QUEUE], 10, LEASE, "w")] == [job]
    started = time.monotonic()
    await driver.wait_for_work([broken, QUEUE], 0.3)  # nothing due: waits, doesn't fail
    assert time.monotonic() - started >= 0.25
