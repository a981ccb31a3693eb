"""Conveyor's pytest plugin (registered as the ``conveyor`` pytest11 entry point).

Fixtures:

- ``conveyor_clock``: a :class:`~conveyor.core.clock.ManualClock`, moved by
  ``app.drain()`` or by hand with ``advance``;
- ``app``: a fresh ``Conveyor("memory://")`` on that clock, made the default app
  for the test (so plain ``@task`` functions dispatch to it) and restored after.

Nothing here runs unless a test asks for a fixture; the plugin needs no configuration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from conveyor.app import Conveyor
from conveyor.core import dispatch as _dispatch
from conveyor.core.clock import ManualClock


@pytest.fixture
def conveyor_clock() -> ManualClock:
    """A clock that moves only when told to."""
    return ManualClock()


@pytest.fixture
def app(conveyor_clock: ManualClock) -> Iterator[Conveyor]:
    """A ``memory://`` app on ``conveyor_clock``, the default app for this test."""
    previous = _dispatch._default_app
    instance = Conveyor("memory://", clock=conveyor_clock)
    _dispatch.set_default_app(instance)
    try:
        yield instance
    finally:
        _dispatch.set_default_app(previous)
        # close on a private loop: the test's loop (if any) is not running in teardown,
        # and the memory driver holds no loop-bound resources worth awaiting on it
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(instance.close())
        finally:
            loop.close()
