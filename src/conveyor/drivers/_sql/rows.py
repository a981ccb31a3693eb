"""Between database rows and the driver contract's types, the same for every SQL dialect.

Every query that reports a job selects the columns of :data:`JOB_COLUMNS` in that
order, times as epoch seconds, plus ``due``: whether ``run_at`` has passed by the
database's clock (a scheduled job that is due reports as queued).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.core.job import ErrorInfo, JobInfo, JobStatus
from conveyor.drivers.base import NewJob, Outcome, OutcomeKind
from conveyor.exceptions import DispatchError

JOB_COLUMNS = (
    "id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result, "
    "error_type, error_message, traceback, progress, progress_message, finished_at, "
    "cancel_requested, due"
)

#: Outcome codes in SQL: the :class:`OutcomeKind` values, and 0 for "succeeded, keep nothing".
FORGET = 0
FINISHED_KINDS = frozenset({OutcomeKind.SUCCEEDED, OutcomeKind.DEAD, OutcomeKind.CANCELLED})


def job_info(row: Sequence[Any]) -> JobInfo:
    """A :class:`JobInfo` from a row of :data:`JOB_COLUMNS`."""
    (job_id, task, queue, state, attempts, priority, run_at, enqueued_at, payload, result,
     error_type, error_message, traceback, progress, progress_message, finished_at,
     cancel_requested, due) = row  # fmt: skip
    status = JobStatus(state)
    if status is JobStatus.SCHEDULED and due:
        status = JobStatus.QUEUED
    return JobInfo(
        id=job_id,
        task=task,
        queue=queue,
        status=status,
        attempts=int(attempts),
        priority=int(priority),
        run_at=float(run_at),
        enqueued_at=float(enqueued_at),
        payload=bytes(payload),
        result=None if result is None else bytes(result),
        error=None
        if error_type is None
        else ErrorInfo(error_type, error_message or "", traceback or ""),
        progress=None if progress is None else float(progress),
        progress_message=progress_message,
        finished_at=None if finished_at is None else float(finished_at),
        cancel_requested=bool(cancel_requested),
    )


def status_filter(status: JobStatus) -> tuple[str, str, bool]:
    """``(state, alt, due)`` for listing/purging ``status``: a due scheduled job is queued.

    Rows match when their state is ``state`` or ``alt``, and a scheduled row matches only
    on the ``due`` side of the database's now.
    """
    if status is JobStatus.QUEUED:
        return ("queued", "scheduled", True)
    if status is JobStatus.SCHEDULED:
        return ("scheduled", "scheduled", False)
    return (status.value, status.value, True)


def check_priorities(jobs: Sequence[NewJob]) -> None:
    for job in jobs:
        if not 0 <= job.priority <= 9:
            raise DispatchError(f"job {job.id}: priority {job.priority} is outside 0..9")


def outcome_code(outcome: Outcome) -> int:
    if outcome.kind is OutcomeKind.SUCCEEDED and outcome.result_ttl <= 0:
        return FORGET
    return int(outcome.kind)


def outcome_seconds(outcome: Outcome, retention: float) -> float:
    """The one duration an outcome needs: result TTL, delay, or how long a cancel is kept."""
    kind = outcome.kind
    if kind is OutcomeKind.SUCCEEDED:
        return max(outcome.result_ttl, 0.0)
    if kind is OutcomeKind.CANCELLED:
        return retention
    if kind is OutcomeKind.DEAD:
        return 0.0
    return max(outcome.delay, 0.0)


def unique_outcomes(outcomes: Sequence[Outcome]) -> tuple[list[Outcome], list[bool]]:
    """The first outcome per lease (id and token); a repeat in the batch is refused."""
    seen: set[tuple[str, str]] = set()
    first: list[Outcome] = []
    keep: list[bool] = []
    for o in outcomes:
        lease = (o.id, o.token)
        if lease in seen:
            keep.append(False)
        else:
            seen.add(lease)
            first.append(o)
            keep.append(True)
    return first, keep
