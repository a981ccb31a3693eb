"""Conveyor: an async-first, type-safe background task queue.

Nothing here connects to anything at import time.
"""

from conveyor.app import Conveyor, get_app, init
from conveyor.core.context import JobContext, current_job
from conveyor.core.dispatch import Dispatch, dispatch_many
from conveyor.core.handle import Progress, TaskHandle
from conveyor.core.job import JobInfo, JobStatus
from conveyor.core.signals import Fail, Retry, Snooze
from conveyor.core.task import Task, TaskDef, task
from conveyor.exceptions import (
    ArgumentError,
    BrokerError,
    BrokerUnavailableError,
    ConfigurationError,
    ConveyorError,
    DecodeError,
    DispatchError,
    JobNotFoundError,
    PayloadTooLargeError,
    SchemaError,
    TaskCancelledError,
    TaskFailed,
)
from conveyor.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "ArgumentError",
    "BrokerError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "Conveyor",
    "ConveyorError",
    "DecodeError",
    "Dispatch",
    "DispatchError",
    "Fail",
    "JobContext",
    "JobInfo",
    "JobNotFoundError",
    "JobStatus",
    "PayloadTooLargeError",
    "Progress",
    "Retry",
    "SchemaError",
    "Settings",
    "Snooze",
    "Task",
    "TaskCancelledError",
    "TaskDef",
    "TaskFailed",
    "TaskHandle",
    "__version__",
    "current_job",
    "dispatch_many",
    "get_app",
    "init",
    "task",
]
