"""Task definitions: ``@task`` on functions, and class-based ``Task[R]``."""

from __future__ import annotations

import functools
import inspect
import logging
import typing
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    ParamSpec,
    Protocol,
    TypedDict,
    TypeVar,
    Unpack,
    overload,
)

import msgspec

from conveyor.core.dispatch import Dispatch
from conveyor.core.registry import registry
from conveyor.exceptions import ArgumentError, ConfigurationError

if TYPE_CHECKING:
    from datetime import datetime

    from conveyor.core.dispatch import DispatchBackend
    from conveyor.core.handle import TaskHandle

log = logging.getLogger("conveyor.task")

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)

Backoff = float | Callable[[int], float]


class Mode(StrEnum):
    """Where a task's code runs in the worker."""

    ASYNC = "async"  # on the event loop
    THREAD = "thread"  # plain def, in the thread pool
    PROCESS = "process"  # in the process pool (async or sync)


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Options set on ``@task`` or as class attributes. ``None`` means the app's default."""

    queue: str | None = None
    max_attempts: int | None = None
    timeout: float | None = None
    retry_on: tuple[type[BaseException], ...] | None = None
    backoff: Backoff | None = None
    priority: int | None = None
    result_ttl: float | None = None
    process: bool = False

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.priority is not None and not 0 <= self.priority <= 9:
            raise ConfigurationError("priority runs from 0 (highest) to 9")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError("timeout must be positive seconds")


def _seconds(value: float | timedelta | None) -> float | None:
    if isinstance(value, timedelta):
        return value.total_seconds()
    return None if value is None else float(value)


def _public_module(fn: Callable[..., Any]) -> str:
    module = getattr(fn, "__module__", None) or "__main__"
    # a process-pool child re-imports the main script as __mp_main__
    return "__main__" if module == "__mp_main__" else module


class TaskDef(Generic[P, R]):
    """A registered task. Calling it builds a :class:`Dispatch`; it never runs the code."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        options: TaskOptions = TaskOptions(),
        owner: type[Any] | None = None,
        app: DispatchBackend | None = None,
    ) -> None:
        self.fn = fn
        self.owner = owner
        self.options = options
        self.app = app
        qualname = owner.__qualname__ if owner is not None else fn.__qualname__
        module = _public_module(owner if owner is not None else fn)
        self.origin = f"{module}.{qualname}"
        self.name = name or self.origin
        if "<locals>" in self.name and name is None:
            # still usable in-process (tests, eager mode); a worker elsewhere can't find it
            self.name = self.origin
        self.is_async = inspect.iscoroutinefunction(fn)
        self.mode = (
            Mode.PROCESS if options.process else Mode.ASYNC if self.is_async else Mode.THREAD
        )
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if owner is not None:
            params = params[1:]  # drop self
        self.signature = sig.replace(parameters=params)
        self._kinds = [(p.name, p.kind) for p in params]
        self._simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in params)
        # for the fast path of bind(): positional names, every name, the required ones
        self._positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
        self._names = frozenset(p.name for p in params)
        self._required = frozenset(p.name for p in params if p.default is p.empty)
        self._args_type: type[msgspec.Struct] | None = None
        self._return_type: Any = None
        self._hints_loaded = False
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        registry.add(self)

    def __repr__(self) -> str:
        return f"<task {self.name} ({self.mode.value})>"

    # -- dispatching -------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Dispatch[R]:
        return Dispatch(self, self.bind(args, kwargs))

    async def dispatch(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle[R]:
        """Shortcut for ``await task(...).dispatch()``."""
        return await Dispatch(self, self.bind(args, kwargs)).dispatch()

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Check arguments against the signature; a mismatch is an :class:`ArgumentError`."""
        if self._simple and len(args) <= len(self._positional):
            # the common case without inspect.Signature.bind (5x cheaper); anything odd
            # falls through to it, for its exact error messages
            bound = dict(zip(self._positional, args, strict=False))
            if kwargs:
                if not kwargs.keys() <= self._names or not kwargs.keys().isdisjoint(bound):
                    bound = {}
                    required_ok = False
                else:
                    bound.update(kwargs)
                    required_ok = self._required <= bound.keys()
            else:
                required_ok = self._required <= bound.keys()
            if required_ok:
                return bound
        try:
            return self.signature.bind(*args, **kwargs).arguments
        except TypeError as exc:
            # Signature.bind reports a missing argument before an unknown one, so a typo
            # (``too=`` for ``to=``) would read "missing 'to'": name the typo instead
            params = self.signature.parameters
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                for key in kwargs:
                    param = params.get(key)
                    if param is None or param.kind is param.POSITIONAL_ONLY:
                        raise ArgumentError(
                            f"{self.name}(): got an unexpected keyword argument {key!r}"
                        ) from None
            raise ArgumentError(f"{self.name}(): {exc}") from None

    # -- types, loaded lazily so forward references resolve ----------------------

    def _load_hints(self) -> None:
        try:
            hints = typing.get_type_hints(self.fn)
        except Exception as exc:
            raise ConfigurationError(
                f"cannot resolve the annotations of task {self.name}: {exc}"
            ) from exc
        fields: list[tuple[str, Any, Any]] = []
        for pname, kind in self._kinds:
            ann = hints.get(pname, Any)
            default = self.signature.parameters[pname].default
            if kind is inspect.Parameter.VAR_POSITIONAL:
                fields.append((pname, tuple[ann, ...], msgspec.UNSET))  # type: ignore[valid-type]
            elif kind is inspect.Parameter.VAR_KEYWORD:
                fields.append((pname, dict[str, ann], msgspec.UNSET))  # type: ignore[valid-type]
            elif default is inspect.Parameter.empty:
                fields.append((pname, ann, msgspec.NODEFAULT))
            else:
                fields.append((pname, ann, msgspec.UNSET))
        struct_fields = [
            (n, t) if d is msgspec.NODEFAULT else (n, t | msgspec.UnsetType, d)
            for n, t, d in fields
        ]
        self._args_type = msgspec.defstruct(
            f"{self.fn.__qualname__}.Args", struct_fields, kw_only=True, forbid_unknown_fields=True
        )
        self._return_type = hints.get("return", Any)
        self._hints_loaded = True

    @property
    def args_type(self) -> type[msgspec.Struct]:
        """A struct of the parameters and their annotations, for typed decoding."""
        if not self._hints_loaded:
            self._load_hints()
        assert self._args_type is not None
        return self._args_type

    @property
    def return_type(self) -> Any:
        if not self._hints_loaded:
            self._load_hints()
        return self._return_type

    def call_args(self, args: msgspec.Struct) -> tuple[list[Any], dict[str, Any]]:
        """Turn decoded arguments back into ``fn(*args, **kwargs)`` form."""
        unset = msgspec.UNSET
        if self._simple:
            return [], {n: v for n, _ in self._kinds if (v := getattr(args, n)) is not unset}
        positional: list[Any] = []
        keywords: dict[str, Any] = {}
        for pname, kind in self._kinds:
            value = getattr(args, pname)
            if value is unset:
                continue
            if kind is inspect.Parameter.POSITIONAL_ONLY:
                positional.append(value)
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                positional.extend(value)
            elif kind is inspect.Parameter.VAR_KEYWORD:
                keywords.update(value)
            else:
                keywords[pname] = value
        return positional, keywords

    def invoke(self, positional: list[Any], keywords: dict[str, Any]) -> Any:
        """Call the task's code (a coroutine for async tasks)."""
        if self.owner is not None:
            instance = object.__new__(self.owner)
            return self.fn(instance, *positional, **keywords)
        return self.fn(*positional, **keywords)

    # -- lifecycle hooks (class-based tasks override them) -------------------------

    def should_retry(self, exc: BaseException) -> bool:
        retry_on = self.options.retry_on
        if retry_on is not None and not isinstance(exc, retry_on):
            return False
        if self.owner is not None:
            verdict = self.owner.should_retry(object.__new__(self.owner), exc)
            return True if verdict is None else bool(verdict)  # a stub body means "default"
        return True

    def backoff_delay(self, attempt: int, base: float, cap: float) -> float | None:
        """Seconds before the next attempt, or ``None`` for the app's default policy."""
        hook: Callable[[int], Any] | None = None
        if self.owner is not None and self.owner.backoff is not Task.backoff:
            hook = functools.partial(self.owner.backoff, object.__new__(self.owner))
        elif callable(self.options.backoff):
            hook = self.options.backoff
        if hook is None:
            return None
        try:
            value = hook(attempt)
            return None if value is None else max(float(value), 0.0)
        except Exception:
            log.exception("job.hook_failed %s: backoff() raised; default backoff", self.name)
            return None

    @property
    def backoff_base(self) -> float | None:
        backoff = self.options.backoff
        return float(backoff) if isinstance(backoff, int | float) else None

    async def on_failed(self, exc: BaseException) -> None:
        if self.owner is not None and self.owner.failed is not Task.failed:
            await self.owner.failed(object.__new__(self.owner), exc)


class _Decorator(Protocol):
    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> TaskDef[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> TaskDef[P, R]: ...


class TaskKwargs(TypedDict, total=False):
    """The options ``@task(...)`` and ``@app.task(...)`` accept."""

    name: str | None
    queue: str | None
    max_attempts: int | None
    timeout: float | timedelta | None
    retry_on: tuple[type[BaseException], ...] | type[BaseException] | None
    backoff: Backoff | None
    priority: int | None
    result_ttl: float | timedelta | None
    process: bool


@overload
def task(fn: Callable[P, Coroutine[Any, Any, R]], /) -> TaskDef[P, R]: ...
@overload
def task(fn: Callable[P, R], /) -> TaskDef[P, R]: ...


@overload
def task(**options: Unpack[TaskKwargs]) -> _Decorator: ...
def task(fn: Callable[..., Any] | None = None, /, **options: Unpack[TaskKwargs]) -> Any:
    """Make a function a task. Use bare (``@task``) or with options (``@task(queue=...)``)."""
    return make_task(fn, None, options)


def make_task(
    fn: Callable[..., Any] | None, app: DispatchBackend | None, options: TaskKwargs
) -> Any:
    """The untyped core of :func:`task` (also behind ``@app.task``)."""
    unknown = set(options) - set(TaskKwargs.__annotations__)
    if unknown:
        raise TypeError(f"@task() got unexpected options: {', '.join(sorted(unknown))}")
    retry_on = options.get("retry_on")
    if isinstance(retry_on, type):
        retry_on = (retry_on,)
    task_options = TaskOptions(
        queue=options.get("queue"),
        max_attempts=options.get("max_attempts"),
        timeout=_seconds(options.get("timeout")),
        retry_on=retry_on,
        backoff=options.get("backoff"),
        priority=options.get("priority"),
        result_ttl=_seconds(options.get("result_ttl")),
        process=options.get("process", False),
    )
    name = options.get("name")

    def wrap(f: Callable[..., Any]) -> TaskDef[Any, Any]:
        if isinstance(f, TaskDef) or not callable(f):
            raise ConfigurationError("@task decorates a function")
        return TaskDef(f, name=name, options=task_options, app=app)

    return wrap if fn is None else wrap(fn)


class Task(Generic[R_co]):
    """Base for class-based tasks with lifecycle hooks.

    Subclass with ``Task[ReturnType]`` and define ``handle``. Instantiating the
    class with ``handle``'s arguments gives a pending dispatch::

        class SendReport(Task[str]):
            queue = "reports"
            max_attempts = 3
            async def handle(self, user_id: int) -> str: ...

        await SendReport(user_id=1).on_queue("low").dispatch()
    """

    name: ClassVar[str | None] = None
    queue: ClassVar[str | None] = None
    max_attempts: ClassVar[int | None] = None
    timeout: ClassVar[float | timedelta | None] = None
    retry_on: ClassVar[tuple[type[BaseException], ...] | None] = None
    priority: ClassVar[int | None] = None
    result_ttl: ClassVar[float | timedelta | None] = None
    process: ClassVar[bool] = False
    definition: ClassVar[TaskDef[..., Any]]

    __slots__ = ("_dispatch",)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handle = cls.__dict__.get("handle")
        if handle is None:
            return  # an intermediate base class
        options = TaskOptions(
            queue=cls.queue,
            max_attempts=cls.max_attempts,
            timeout=_seconds(cls.timeout),
            retry_on=cls.retry_on,
            priority=cls.priority,
            result_ttl=_seconds(cls.result_ttl),
            process=cls.process,
        )
        cls.definition = TaskDef(handle, name=cls.name, options=options, owner=cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        definition = type(self).definition
        self._dispatch: Dispatch[R_co] = Dispatch(definition, definition.bind(args, kwargs))

    # lifecycle hooks ---------------------------------------------------------------

    async def failed(self, exc: BaseException) -> None:
        """Called once, after the last attempt failed."""

    def should_retry(self, exc: BaseException) -> bool:
        """Whether ``exc`` deserves another attempt. Default: yes."""
        return True

    def backoff(self, attempt: int) -> float:
        """Seconds before attempt ``attempt + 1``. Default: the app's jittered backoff."""
        raise NotImplementedError  # sentinel: TaskDef falls back to the default policy

    # the dispatch chain ---------------------------------------------------------------

    def as_dispatch(self) -> Dispatch[R_co]:
        """The pending :class:`Dispatch` (for chain methods named like class options)."""
        return self._dispatch

    def on_queue(self, queue: str) -> Dispatch[R_co]:
        return self._dispatch.on_queue(queue)

    def delay(self, seconds: float | timedelta) -> Dispatch[R_co]:
        return self._dispatch.delay(seconds)

    def at(self, when: datetime) -> Dispatch[R_co]:
        return self._dispatch.at(when)

    def using(self, app: DispatchBackend) -> Dispatch[R_co]:
        return self._dispatch.using(app)

    def options(self, **changes: Any) -> Dispatch[R_co]:
        """Chain options by keyword: ``.options(max_attempts=5, timeout=30, priority=0)``."""
        return self._dispatch.options(**changes)

    async def dispatch(self, *, connection: Any = None) -> TaskHandle[R_co]:
        return await self._dispatch.dispatch(connection=connection)

    def dispatch_sync(self) -> TaskHandle[R_co]:
        return self._dispatch.dispatch_sync()
