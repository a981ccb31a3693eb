from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.helpers import Running


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A fresh SQLite broker file for this test."""
    return f"sqlite:///{tmp_path / 'broker.db'}"


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Running]]:
    """Start ``conveyor ARGS...`` in the background; whatever still runs is killed at the end."""
    started: list[Running] = []

    def run(*args: str, env: dict[str, str] | None = None, name: str = "") -> Running:
        log = tmp_path / f"{name or 'proc'}-{len(started)}.log"
        proc = Running(args, tmp_path, log, env or {})
        started.append(proc)
        return proc

    yield run
    for proc in started:
        proc.kill()
