"""What a worker needs to know, resolved from settings and CLI flags."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 100
    prefetch: int | None = None
    lease_seconds: float = 30.0
    shutdown_grace: float = 30.0
    thread_pool_size: int = 32
    process_pool_size: int = 2
    max_attempts: int = 3
    backoff_base: float = 1.0
    backoff_cap: float = 3600.0
    result_ttl: float = 86400.0
    poison_threshold: int = 3
    idle_poll_max: float = 0.25
    ack_batch_size: int = 256
    ack_interval: float = 0.0
    burst: bool = False
    max_jobs: int | None = None  # stop after this many (``--max-jobs-per-child``)
    modules: tuple[str, ...] = ()  # imported by process-pool children
    codec: str = "msgpack"
    worker_id: str = field(default_factory=_worker_id)

    @property
    def capacity(self) -> int:
        """Jobs held at once: running plus reserved ahead."""
        prefetch = self.concurrency if self.prefetch is None else self.prefetch
        return self.concurrency + prefetch
