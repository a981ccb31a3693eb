"""Dramatiq with its ``RedisBroker``: ``actor.send``; ``dramatiq.Worker`` (what the
``dramatiq`` command runs in each process) with ``worker_threads``; ``gevent`` runs those
threads as greenlets after monkey-patching (what ``dramatiq-gevent`` does).

Dramatiq's API is synchronous: the 100-concurrent enqueue phase calls ``send`` from 100
threads; there is no bulk send. No process pool: the CPU sweep runs two worker processes.
Default middleware; no results.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, SyncProducer, mark_ready, quiet_logs
from benchmarks.timing import record

FUNCTIONS = {"noop": "noop", "io": "io", "cpu": "cpu", "latency": "noop"}
QUEUE = "bench"


def noop(i: int) -> None:
    record(i)


def io(i: int) -> None:
    time.sleep(IO_SECONDS)
    record(i)


def cpu(i: int) -> int:
    x = burn()
    record(i)
    return x


def build(url: str) -> tuple[Any, dict[str, Any]]:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker

    broker = RedisBroker(url=url)
    dramatiq.set_broker(broker)
    actors = {
        f.__name__: dramatiq.actor(f, actor_name=f.__name__, queue_name=QUEUE, broker=broker)
        for f in (noop, io, cpu)
    }
    return broker, actors


class DramatiqProducer(SyncProducer):
    def __init__(self, spec: RunSpec, url: str) -> None:
        super().__init__(spec)
        self.broker, actors = build(url)
        self.actor = actors[FUNCTIONS[spec.scenario]]

    def send_one_sync(self, i: int) -> None:
        self.actor.send(i)

    async def close(self) -> None:
        await super().close()
        self.broker.close()


class DramatiqFramework(PeerFramework):
    name = "dramatiq"
    module = "dramatiq"
    dists = ("dramatiq", "redis", "hiredis", "gevent")

    def producer(self, spec: RunSpec, *, scratch: bool) -> DramatiqProducer:
        return DramatiqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    from dramatiq import Worker

    quiet_logs()
    broker, _ = build(DramatiqFramework().url(scratch=False))
    broker.emit_after("process_boot")
    worker = Worker(broker, queues={QUEUE}, worker_threads=spec.concurrency)
    mark_ready(spec, index)  # start() already consumes (in its threads) before it returns
    worker.start()
    while True:  # the harness kills this process
        time.sleep(3600)
