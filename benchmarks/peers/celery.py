"""Celery with its Redis transport: ``task.apply_async``; ``app.worker_main`` (the ``celery
worker`` command) with a pool: ``prefork`` (the default; the CPU task's process pool),
``threads`` or ``gevent`` (I/O: ``time.sleep`` monkey-patched into a greenlet switch).

Celery's API is synchronous: the 100-concurrent enqueue phase calls ``apply_async`` from
100 threads; there is no bulk send (``group`` sends its members one by one). No result
backend (``task_ignore_result``). Worker flags: ``--without-gossip --without-mingle
--without-heartbeat`` (the usual ones for a single worker), otherwise defaults
(prefetch multiplier 4, early acks).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.bodies import IO_SECONDS, burn
from benchmarks.framework import RunSpec
from benchmarks.peers._base import PeerFramework, SyncProducer, mark_ready
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
    from celery import Celery

    app = Celery("bench", broker=url, set_as_current=True)
    app.conf.update(
        task_ignore_result=True,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    tasks = {f.__name__: app.task(name=f.__name__)(f) for f in (noop, io, cpu)}
    return app, tasks


class CeleryProducer(SyncProducer):
    def __init__(self, spec: RunSpec, url: str) -> None:
        super().__init__(spec)
        self.app, tasks = build(url)
        self.task = tasks[FUNCTIONS[spec.scenario]]

    def send_one_sync(self, i: int) -> None:
        self.task.apply_async((i,))

    async def close(self) -> None:
        await super().close()
        self.app.close()


class CeleryFramework(PeerFramework):
    name = "celery"
    module = "celery"
    dists = ("celery", "kombu", "redis", "hiredis", "gevent")

    def producer(self, spec: RunSpec, *, scratch: bool) -> CeleryProducer:
        return CeleryProducer(spec, self.url(scratch=scratch))


def serve(spec: RunSpec, index: int) -> None:
    from celery.signals import worker_ready

    app, _ = build(CeleryFramework().url(scratch=False))

    @worker_ready.connect(weak=False)
    def ready(**_: Any) -> None:
        mark_ready(spec, index)

    app.worker_main(
        [
            "worker",
            f"--pool={spec.pool or 'prefork'}",
            f"--concurrency={spec.concurrency}",
            f"--queues={QUEUE}",
            f"--hostname=bench{index}@%h",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )
