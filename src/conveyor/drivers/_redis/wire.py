"""What goes into the scripts and what comes back: packing batches, reading job hashes.

Batches travel as one msgpack argument plus one argument holding every payload (or
result) back to back: Redis's Lua msgpack reads only str, not bin, and binary data
that is cut out of one string by offset costs nothing to encode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from conveyor.core.job import ErrorInfo, JobInfo, JobStatus
from conveyor.drivers.base import NewJob, Outcome, Reserved

_ENCODER = msgspec.msgpack.Encoder()
encode = _ENCODER.encode


def pack_jobs(jobs: Sequence[NewJob]) -> tuple[bytes, bytes]:
    """``enqueue.lua``'s arguments: job metadata, then the payloads."""
    meta = [
        (
            j.id,
            j.task,
            j.queue,
            j.priority,
            j.delay * 1000.0,
            None if j.eta is None else j.eta * 1000.0,
            len(j.payload),
        )
        for j in jobs
    ]
    return encode(meta), b"".join([j.payload for j in jobs])


def pack_outcomes(outcomes: Sequence[Outcome]) -> tuple[bytes, bytes]:
    """``complete.lua``'s arguments: the outcomes, nine entries each, then the results."""
    flat: list[Any] = []
    add = flat.extend
    results: list[bytes] = []
    for o in outcomes:
        result = o.result
        if result is None:
            size = -1
        else:
            size = len(result)
            results.append(result)
        err = o.error
        add(
            (
                o.id,
                o.token,
                int(o.kind),
                size,
                o.result_ttl * 1000.0,
                o.delay * 1000.0,
                "" if err is None else err.type,
                "" if err is None else err.message,
                "" if err is None else err.traceback,
            )
        )
    return encode(flat), b"".join(results)


def reserved(reply: list[Any], queues: Sequence[str]) -> list[Reserved]:
    """``reserve.lua``'s flat reply, seven entries per job."""
    return [
        Reserved(
            reply[i].decode(),
            queues[reply[i + 1] - 1],
            reply[i + 2],
            reply[i + 3],
            str(reply[i + 4]),
            reply[i + 5],
            reply[i + 6],
        )
        for i in range(0, len(reply), 7)
    ]


def _int(value: bytes | None, default: int = 0) -> int:
    """A number field of a job hash; a missing or garbled one (a bug, a hand-made job) is
    shown as ``default`` rather than failing every listing it is in."""
    try:
        return default if value is None else int(value)
    except ValueError:
        return default


def job_info(job_id: str, flat: list[bytes], now_ms: int) -> JobInfo | None:
    """A job from its HGETALL (``None`` if empty or stateless); a scheduled job that is due
    is queued."""
    if not flat:
        return None
    it = iter(flat)
    f: dict[bytes, bytes] = dict(zip(it, it, strict=True))
    try:
        status = JobStatus(f[b"s"].decode())
    except (KeyError, ValueError):
        return None  # the scripts take a hash without a known state for no job too
    run_at = _int(f.get(b"ra"))
    if status is JobStatus.SCHEDULED and run_at <= now_ms:
        status = JobStatus.QUEUED
    error_type = f.get(b"et")
    progress = f.get(b"pg")
    message = f.get(b"pm")
    finished = f.get(b"f")
    return JobInfo(
        id=job_id,
        task=f.get(b"t", b"").decode(),
        queue=f.get(b"q", b"").decode(),
        status=status,
        attempts=_int(f.get(b"a")),
        priority=_int(f.get(b"pr"), 5),
        run_at=run_at / 1000,
        enqueued_at=_int(f.get(b"ea")) / 1000,
        payload=f.get(b"p", b""),
        result=f.get(b"r"),
        error=None
        if error_type is None
        else ErrorInfo(error_type.decode(), f.get(b"em", b"").decode(), f.get(b"tb", b"").decode()),
        progress=None if progress is None else float(progress),
        progress_message=None if message is None else message.decode(),
        finished_at=None if finished is None else _int(finished) / 1000,
        cancel_requested=b"cx" in f,
    )


def seq_of(flat: list[bytes]) -> int:
    """The enqueue sequence number in a job's HGETALL."""
    for i in range(0, len(flat) - 1, 2):
        if flat[i] == b"sq":
            return _int(flat[i + 1])
    return 0
