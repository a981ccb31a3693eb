"""A driver's connections belong to the event loop that opened them.

Client libraries (asyncpg, asyncmy) bind sockets to one loop, but a Conveyor app is
sometimes awaited from another one: ``handle.result()`` from sync code runs on a
short-lived loop of its own. :func:`on_home_loop` makes a driver method run on the
loop that owns the connections, whichever loop awaits it; if that loop is gone, the
driver is told to drop its connections and reopen them on the current loop.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class HomeBound(Protocol):
    """What :func:`on_home_loop` needs from a driver."""

    _home: asyncio.AbstractEventLoop | None

    async def _rehome(self) -> None:
        """Forget connections bound to a loop that no longer runs."""
        ...


S = TypeVar("S", bound=HomeBound)


def on_home_loop(
    method: Callable[Concatenate[S, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[S, P], Coroutine[Any, Any, T]]:
    """Run ``method`` on the driver's home loop (see the module docstring)."""

    async def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
        home = self._home
        if home is None:
            return await method(self, *args, **kwargs)
        loop = asyncio.get_running_loop()
        if home is loop:
            return await method(self, *args, **kwargs)
        if home.is_closed() or not home.is_running():
            await self._rehome()
            return await method(self, *args, **kwargs)
        future = asyncio.run_coroutine_threadsafe(method(self, *args, **kwargs), home)
        return await asyncio.wrap_future(future)

    functools.update_wrapper(wrapper, method)
    return wrapper
