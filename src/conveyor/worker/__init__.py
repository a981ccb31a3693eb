"""The worker: fetching, running, leasing and acking jobs, and its process supervisor."""

from conveyor.worker.config import WorkerConfig
from conveyor.worker.worker import Worker, WorkerStats

__all__ = ["Worker", "WorkerConfig", "WorkerStats"]
