"""Every ``CONVEYOR_*`` option in one place, read from the environment and ``.env``."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _cpus() -> int:
    return max(os.cpu_count() or 1, 1)


class Settings(BaseSettings):
    """Conveyor's configuration. Each field is also the env var ``CONVEYOR_<NAME>``."""

    model_config = SettingsConfigDict(
        env_prefix="CONVEYOR_", env_file=".env", extra="ignore", validate_default=True
    )

    url: str = Field("sqlite:///conveyor.db", description="Broker URL; the scheme picks the driver")
    default_queue: str = Field("default", description="Queue for tasks that name none")
    codec: Literal["msgpack", "json"] = Field("msgpack", description="Wire codec")

    concurrency: int = Field(100, ge=1, description="Jobs one worker process runs at once")
    prefetch: int | None = Field(
        None, ge=0, description="Jobs reserved ahead of free slots (default: concurrency)"
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="Lease on a reserved job; renewed while it runs"
    )
    shutdown_grace: float = Field(
        30.0, ge=0, description="Seconds in-flight jobs get to finish on shutdown"
    )
    thread_pool_size: int = Field(32, ge=1, description="Threads for plain def tasks")
    process_pool_size: int = Field(
        default_factory=_cpus, ge=1, description="Processes for process=True tasks"
    )
    max_attempts: int = Field(3, ge=1, description="Default attempts before a job is dead")
    backoff_base: float = Field(1.0, ge=0, description="Retry backoff base, seconds")
    backoff_cap: float = Field(3600.0, ge=0, description="Retry backoff cap, seconds")
    result_ttl: float = Field(86400.0, ge=0, description="Seconds results are kept (0: none)")
    default_priority: int = Field(5, ge=0, le=9, description="Priority when none is given")
    poison_threshold: int = Field(
        3, ge=1, description="Worker deaths on one job before it is dead-lettered"
    )
    max_payload_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest encoded job accepted at dispatch"
    )
    idle_poll_max: float = Field(
        0.25, gt=0, description="Longest wait between polls of an idle polling broker"
    )
    ack_batch_size: int = Field(256, ge=1, description="Outcomes per batched ack")
    ack_interval: float = Field(
        0.0, ge=0, description="Extra seconds an outcome may wait to be acked with others"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info")
    log_format: Literal["text", "json"] = Field("text")
