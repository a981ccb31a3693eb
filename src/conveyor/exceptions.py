"""Every error Conveyor raises on purpose derives from :class:`ConveyorError`.

The tree::

    ConveyorError
    ├── ConfigurationError          bad URL, unknown scheme, missing extra, bad setting
    ├── DispatchError               a job could not be built or enqueued
    │   ├── PayloadTooLargeError    encoded job over the driver's limit
    │   └── ArgumentError           (also a TypeError) arguments don't fit the signature
    ├── BrokerError                 the driver failed talking to its broker (cause attached)
    │   └── BrokerUnavailableError  the broker cannot be reached at all
    ├── SchemaError                 a SQL database is not migrated to this version
    ├── JobNotFoundError            no job with that id (never existed, or pruned)
    ├── TaskFailed                  ``handle.result()`` of a job that ended dead
    ├── TaskCancelledError          ``handle.result()`` of a cancelled job
    └── DecodeError                 bytes that are not a valid Conveyor message

Control flow signals raised *inside* tasks are not errors and live in
:mod:`conveyor.core.signals`: ``Retry``, ``Snooze`` and ``Fail``.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Root of every error raised by Conveyor."""


class ConfigurationError(ConveyorError):
    """A setting, URL or import path is wrong; the message says which and how to fix it."""


class DispatchError(ConveyorError):
    """A job could not be dispatched."""


class ArgumentError(DispatchError, TypeError):
    """Arguments don't match the task's signature or annotations."""


class PayloadTooLargeError(DispatchError):
    """The encoded job is larger than the driver accepts."""


class BrokerError(ConveyorError):
    """The broker failed; the driver's own exception is attached as ``__cause__``."""


class BrokerUnavailableError(BrokerError):
    """The broker could not be reached."""


class SchemaError(ConveyorError):
    """The database schema is missing or older than this version of Conveyor."""


class JobNotFoundError(ConveyorError):
    """No job with that id: it never existed, or it finished and was pruned."""


class DecodeError(ConveyorError):
    """Bytes that are not a valid Conveyor message."""


class TaskCancelledError(ConveyorError):
    """The job was cancelled before it produced a result."""


class TaskFailed(ConveyorError):
    """The job ended dead. Carries the remote exception's type, message and traceback."""

    def __init__(self, job_id: str, exc_type: str, message: str, traceback: str) -> None:
        super().__init__(f"job {job_id} failed: {exc_type}: {message}")
        self.job_id = job_id
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
