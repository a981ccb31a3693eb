"""``TaskHandle[R]``: a typed reference to a dispatched job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from conveyor.core.job import JobInfo, JobStatus
from conveyor.exceptions import JobNotFoundError, TaskCancelledError, TaskFailed

if TYPE_CHECKING:
    from conveyor.core.task import TaskDef

R = TypeVar("R")


class HandleBackend(Protocol):
    """What a handle needs from the app that created it."""

    async def job_info(self, job_id: str) -> JobInfo | None: ...

    async def wait_job(self, job_id: str, timeout: float | None) -> JobInfo | None: ...

    async def cancel_job(self, job_id: str) -> bool: ...

    def decode_result(self, data: bytes, task: TaskDef[Any, Any] | None) -> Any: ...


@dataclass(frozen=True, slots=True)
class Progress:
    fraction: float
    message: str | None


class TaskHandle(Generic[R]):
    """A dispatched job. ``await handle.result()`` is typed as the task's return type."""

    __slots__ = ("_backend", "_task", "id")

    def __init__(
        self, job_id: str, backend: HandleBackend, task: TaskDef[Any, R] | None = None
    ) -> None:
        self.id = job_id
        self._backend = backend
        self._task = task

    def __repr__(self) -> str:
        name = self._task.name if self._task is not None else "?"
        return f"<TaskHandle {name} {self.id}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskHandle) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    async def info(self) -> JobInfo:
        """Everything the broker knows about this job."""
        info = await self._backend.job_info(self.id)
        if info is None:
            raise JobNotFoundError(f"job {self.id} not found (never existed, or pruned)")
        return info

    async def status(self) -> JobStatus:
        """The job's state now."""
        return (await self.info()).status

    async def progress(self) -> Progress | None:
        """The last progress the task reported, if any."""
        info = await self.info()
        if info.progress is None:
            return None
        return Progress(info.progress, info.progress_message)

    async def cancel(self) -> bool:
        """Cancel the job; ``False`` if it already finished."""
        return await self._backend.cancel_job(self.id)

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the job to finish and return its result.

        Raises:
            TaskFailed: the job ended dead; carries the remote type, message, traceback.
            TaskCancelledError: the job was cancelled.
            TimeoutError: not finished within ``timeout`` seconds.
            JobNotFoundError: unknown id, or the result expired (see ``result_ttl``).
        """
        info = await self._backend.wait_job(self.id, timeout)
        if info is None:
            raise JobNotFoundError(
                f"job {self.id} not found: it never existed, or it finished and its "
                "result expired (result_ttl)"
            )
        if info.status is JobStatus.SUCCEEDED:
            if info.result is None:
                return None  # type: ignore[return-value]  # result_ttl=0 keeps nothing
            value: R = self._backend.decode_result(info.result, self._task)
            return value
        if info.status is JobStatus.CANCELLED:
            raise TaskCancelledError(f"job {self.id} was cancelled")
        err = info.error
        raise TaskFailed(
            self.id,
            err.type if err else "Unknown",
            err.message if err else "",
            err.traceback if err else "",
        )
