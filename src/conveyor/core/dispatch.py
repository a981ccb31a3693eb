"""``Dispatch[R]``: an immutable, fluent description of a job about to be enqueued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from conveyor.exceptions import ConfigurationError

if TYPE_CHECKING:
    from conveyor.core.handle import TaskHandle
    from conveyor.core.task import TaskDef

R = TypeVar("R", covariant=True)
T = TypeVar("T")


class DispatchBackend(Protocol):
    """What a dispatch needs from an app (implemented by :class:`conveyor.Conveyor`)."""

    async def enqueue_dispatches(
        self, items: Sequence[Dispatch[Any]], connection: Any = None
    ) -> list[TaskHandle[Any]]: ...

    def run_sync(self, factory: Callable[[], Coroutine[Any, Any, T]]) -> T: ...


_default_app: DispatchBackend | None = None
_default_factory: Callable[[], DispatchBackend] | None = None


def set_default_app(app: DispatchBackend | None) -> None:
    """Make ``app`` the one used by dispatches not bound to another app."""
    global _default_app
    _default_app = app


def set_default_factory(factory: Callable[[], DispatchBackend]) -> None:
    global _default_factory
    _default_factory = factory


def default_app() -> DispatchBackend:
    """The process-wide default app, created from settings on first use."""
    global _default_app
    if _default_app is None:
        if _default_factory is None:
            raise ConfigurationError("no Conveyor app: call conveyor.init() first")
        _default_app = _default_factory()
    return _default_app


class Dispatch(Generic[R]):
    """A job not yet enqueued. Every chain method returns a new ``Dispatch``."""

    __slots__ = (
        "_app",
        "_delay",
        "_eta",
        "_max_attempts",
        "_priority",
        "_queue",
        "_timeout",
        "args",
        "task",
    )

    task: TaskDef[Any, R]
    args: dict[str, Any]
    _queue: str | None
    _delay: float
    _eta: float | None
    _max_attempts: int | None
    _timeout: float | None
    _priority: int | None
    _app: DispatchBackend | None

    def __init__(self, task: TaskDef[Any, R], args: dict[str, Any]) -> None:
        _init(self, task, args)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Dispatch is immutable; chain methods return a new one")

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"<Dispatch {self.task.name}({args})>"

    def _replace(self, **changes: Any) -> Dispatch[R]:
        new: Dispatch[R] = Dispatch.__new__(Dispatch)
        for slot in Dispatch.__slots__:
            object.__setattr__(new, slot, changes.get(slot, getattr(self, slot)))
        return new

    # -- chain -----------------------------------------------------------------

    def on_queue(self, queue: str) -> Dispatch[R]:
        """Send to ``queue`` instead of the task's."""
        if not queue:
            raise ValueError("queue name must not be empty")
        return self._replace(_queue=queue)

    def delay(self, seconds: float | timedelta) -> Dispatch[R]:
        """Run no sooner than ``seconds`` from now (by the broker's clock)."""
        value = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if value < 0:
            raise ValueError("delay must not be negative")
        return self._replace(_delay=value, _eta=None)

    def at(self, when: datetime) -> Dispatch[R]:
        """Run no sooner than ``when`` (a naive datetime is local time)."""
        return self._replace(_eta=when.timestamp(), _delay=0.0)

    def max_attempts(self, attempts: int) -> Dispatch[R]:
        if attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        return self._replace(_max_attempts=attempts)

    def timeout(self, seconds: float | timedelta) -> Dispatch[R]:
        value = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if value <= 0:
            raise ValueError("timeout must be positive")
        return self._replace(_timeout=value)

    def priority(self, priority: int) -> Dispatch[R]:
        """0 is the highest priority, 9 the lowest."""
        if not 0 <= priority <= 9:
            raise ValueError("priority runs from 0 (highest) to 9")
        return self._replace(_priority=priority)

    def unique(self, key: str | None = None, ttl: float | None = None) -> Dispatch[R]:
        raise ConfigurationError("unique jobs are not available yet in this version")

    def using(self, app: DispatchBackend) -> Dispatch[R]:
        """Dispatch through ``app`` instead of the task's or the default one."""
        return self._replace(_app=app)

    def options(
        self,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout: float | timedelta | None = None,
        priority: int | None = None,
        delay: float | timedelta | None = None,
    ) -> Dispatch[R]:
        """Several chain options at once."""
        d: Dispatch[R] = self
        if queue is not None:
            d = d.on_queue(queue)
        if max_attempts is not None:
            d = d.max_attempts(max_attempts)
        if timeout is not None:
            d = d.timeout(timeout)
        if priority is not None:
            d = d.priority(priority)
        if delay is not None:
            d = d.delay(delay)
        return d

    # -- resolved values (the app fills in its defaults for None) -------------------

    @property
    def queue(self) -> str | None:
        return self._queue if self._queue is not None else self.task.options.queue

    @property
    def eta(self) -> float | None:
        return self._eta

    @property
    def delay_seconds(self) -> float:
        return self._delay

    @property
    def attempts_allowed(self) -> int | None:
        if self._max_attempts is not None:
            return self._max_attempts
        return self.task.options.max_attempts

    @property
    def timeout_seconds(self) -> float | None:
        return self._timeout if self._timeout is not None else self.task.options.timeout

    @property
    def priority_value(self) -> int | None:
        return self._priority if self._priority is not None else self.task.options.priority

    @property
    def app(self) -> DispatchBackend:
        return self._app or self.task.app or default_app()

    # -- enqueue ---------------------------------------------------------------

    async def dispatch(self, *, connection: Any = None) -> TaskHandle[R]:
        """Enqueue the job. With ``connection``, inside that open transaction (SQL drivers)."""
        handles = await self.app.enqueue_dispatches([self], connection)
        return handles[0]

    def dispatch_sync(self) -> TaskHandle[R]:
        """Enqueue from synchronous code (a plain thread, or a loop's executor thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "dispatch_sync() called from a running event loop: use `await ....dispatch()`"
            )
        return self.app.run_sync(self.dispatch)


async def dispatch_many(
    items: Sequence[Dispatch[Any]], *, connection: Any = None
) -> list[TaskHandle[Any]]:
    """Enqueue many jobs in one round trip per app (and queue), in order."""
    if not items:
        return []
    first = items[0].app
    if all(d.app is first for d in items):
        return await first.enqueue_dispatches(items, connection)
    groups: dict[int, tuple[DispatchBackend, list[int]]] = {}
    for i, d in enumerate(items):
        app = d.app
        groups.setdefault(id(app), (app, []))[1].append(i)
    out: list[TaskHandle[Any] | None] = [None] * len(items)
    for app, idxs in groups.values():
        handles = await app.enqueue_dispatches([items[i] for i in idxs], connection)
        for i, h in zip(idxs, handles, strict=True):
            out[i] = h
    return [h for h in out if h is not None]


def _make_init() -> Callable[[Dispatch[Any], Any, dict[str, Any]], None]:
    # slot descriptors set values without going through the immutable __setattr__;
    # one call per dispatch on the hot path, so bind them once
    setters = {name: getattr(Dispatch, name).__set__ for name in Dispatch.__slots__}
    set_task, set_args = setters["task"], setters["args"]
    defaults = [
        (setters["_queue"], None),
        (setters["_delay"], 0.0),
        (setters["_eta"], None),
        (setters["_max_attempts"], None),
        (setters["_timeout"], None),
        (setters["_priority"], None),
        (setters["_app"], None),
    ]

    def init(self: Dispatch[Any], task: Any, args: dict[str, Any]) -> None:
        set_task(self, task)
        set_args(self, args)
        for setter, value in defaults:
            setter(self, value)

    return init


_init = _make_init()
