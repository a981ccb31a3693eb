"""The acker never leaves a worker's shutdown waiting, even if its task dies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from conveyor.drivers.base import Outcome, OutcomeKind
from conveyor.drivers.memory import MemoryDriver
from conveyor.worker.acker import Acker


class _Dying(MemoryDriver):
    """A driver whose complete() ends the calling task (an error that became a cancel)."""

    async def complete(self, outcomes: Sequence[Outcome]) -> list[bool]:
        raise asyncio.CancelledError


async def test_close_returns_when_the_acker_task_died(caplog: pytest.LogCaptureFixture) -> None:
    acked: list[Outcome] = []
    acker = Acker(_Dying(), 10, 0.0, lambda outcome, ok: acked.append(outcome))
    acker.start()
    acker.add(Outcome("job", "token", OutcomeKind.SUCCEEDED))
    with caplog.at_level(logging.ERROR, logger="conveyor.worker"):
        await asyncio.wait_for(acker.close(), 5)  # hung for ever before
    assert acked == []
    assert "worker.acker_stopped 1 outcomes unsent" in caplog.text
