"""RQ: ``Queue.enqueue``; bulk ``Queue.enqueue_many``; ``rq.SimpleWorker`` processes.

An RQ worker runs one job at a time, so concurrency N is N worker processes. RQ's
default ``Worker`` forks a new process for every job; ``SimpleWorker`` runs jobs in the
worker process itself and is what is measured here (the forking worker is far slower
on no-op jobs and would dominate the run's time). Results are not kept (``result_ttl=0``).
RQ's API is synchronous: the 100-concurrent enqueue phase calls ``enqueue`` from 100
threads.
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, SyncProducer, mark_ready, quiet_logs
from benchmarks.timing import record

FUNCTIONS: dict[str, Any] = {}
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


FUNCTIONS.update(noop=noop, io=io, cpu=cpu, latency=noop)


class RqProducer(SyncProducer):
    bulk = True

    def __init__(self, spec: RunSpec, url: str) -> None:
        from redis import Redis
        from rq import Queue

        super().__init__(spec)
        self.redis = Redis.from_url(url)
        self.queue = Queue(QUEUE, connection=self.redis)
        self.function = FUNCTIONS[spec.scenario]

    def send_one_sync(self, i: int) -> None:
        self.queue.enqueue(self.function, i, result_ttl=0)

    def send_many_sync(self, indices: range) -> None:
        from rq import Queue

        f = self.function
        self.queue.enqueue_many([Queue.prepare_data(f, (i,), result_ttl=0) for i in indices])

    async def close(self) -> None:
        await super().close()
        self.redis.close()


class RqFramework(PeerFramework):
    name = "rq"
    module = "rq"
    dists = ("rq", "redis", "hiredis")

    def producer(self, spec: RunSpec, *, scratch: bool) -> RqProducer:
        return RqProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    from redis import Redis
    from rq import Queue, SimpleWorker

    quiet_logs()
    redis = Redis.from_url(RqFramework().url(scratch=False))
    worker = SimpleWorker([Queue(QUEUE, connection=redis)], connection=redis)
    mark_ready(spec, index)
    worker.work(burst=False, logging_level="WARNING", with_scheduler=False)
