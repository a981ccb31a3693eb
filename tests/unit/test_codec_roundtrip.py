"""Every supported value round-trips through the codecs, on the real dispatch path.

Tasks annotated with each supported type are dispatched on ``memory://``; the
worker decodes the arguments into the annotations and the task must receive a
value equal to (and of the same type as) the one dispatched, under both codecs.
"""

from __future__ import annotations

import asyncio
import enum
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple, TypedDict

import msgspec
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conveyor import Conveyor, DecodeError, JobStatus, current_job, task
from conveyor.codec import JsonCodec, MsgpackCodec
from conveyor.core.clock import ManualClock
from conveyor.core.job import new_job_id
from conveyor.core.task import TaskDef
from conveyor.drivers.base import NewJob

FAST = settings(
    max_examples=100,
    database=None,  # no example database written into the repository
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 9


@dataclass
class Point:
    x: int
    y: float
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Box:
    corner: Point
    size: tuple[int, int]
    color: Color


class User(pydantic.BaseModel):
    name: str
    age: int
    joined: datetime
    tags: set[str] = set()


class Pair(NamedTuple):
    key: str
    value: int


class Options(TypedDict):
    verbose: bool
    level: int


class Item(msgspec.Struct):
    sku: str
    qty: int


# -- strategies ---------------------------------------------------------------------

ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.floats(allow_nan=False, allow_infinity=False)
texts = st.text(max_size=30)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda m: timezone(timedelta(minutes=m))
)
naive_datetimes = st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31))
aware_datetimes = st.builds(lambda d, tz: d.replace(tzinfo=tz), naive_datetimes, offsets)
timedeltas = st.timedeltas(min_value=timedelta(days=-(10**8)), max_value=timedelta(days=10**8))
decimals = st.decimals(allow_nan=False, allow_infinity=True, places=None)
points = st.builds(Point, ints, floats, st.lists(texts, max_size=3))
users = st.builds(
    User,
    name=texts,
    age=st.integers(0, 150),
    joined=aware_datetimes,
    tags=st.sets(texts, max_size=3),
)

# (case id, annotation, strategy)
CASES: list[tuple[str, Any, st.SearchStrategy[Any]]] = [
    ("str", str, st.text()),
    ("int", int, ints),
    ("float", float, floats),
    ("bool", bool, st.booleans()),
    ("none", None, st.none()),
    ("bytes", bytes, st.binary(max_size=64)),
    ("datetime_naive", datetime, naive_datetimes),
    ("datetime_aware", datetime, aware_datetimes),
    ("date", date, st.dates()),
    ("time", time, st.times()),
    ("time_aware", time, st.times(timezones=st.just(UTC))),
    ("timedelta", timedelta, timedeltas),
    ("decimal", Decimal, decimals),
    ("uuid", uuid.UUID, st.uuids()),
    ("set", set[int], st.sets(ints, max_size=5)),
    ("frozenset", frozenset[str], st.frozensets(texts, max_size=5)),
    ("tuple", tuple[int, str, bool], st.tuples(ints, texts, st.booleans())),
    ("tuple_var", tuple[float, ...], st.lists(floats, max_size=5).map(tuple)),
    ("list", list[bytes], st.lists(st.binary(max_size=8), max_size=5)),
    ("dict", dict[str, int], st.dictionaries(texts, ints, max_size=5)),
    ("dict_int_keys", dict[int, str], st.dictionaries(ints, texts, max_size=5)),
    ("enum", Color, st.sampled_from(Color)),
    ("int_enum", Level, st.sampled_from(Level)),
    ("dataclass", Point, points),
    (
        "dataclass_nested",
        Box,
        st.builds(Box, points, st.tuples(ints, ints), st.sampled_from(Color)),
    ),
    ("pydantic", User, users),
    ("struct", Item, st.builds(Item, texts, ints)),
    ("namedtuple", Pair, st.builds(Pair, texts, ints)),
    ("typeddict", Options, st.fixed_dictionaries({"verbose": st.booleans(), "level": ints})),
    ("optional", int | None, st.none() | ints),
    (
        "nested",
        dict[str, list[tuple[Color, Decimal, uuid.UUID]]],
        st.dictionaries(
            texts,
            st.lists(st.tuples(st.sampled_from(Color), decimals, st.uuids()), max_size=3),
            max_size=3,
        ),
    ),
    (
        "nested_models",
        dict[str, list[User]] | None,
        st.none() | st.dictionaries(texts, st.lists(users, max_size=2), max_size=2),
    ),
    ("list_of_dataclasses", list[Point], st.lists(points, max_size=3)),
]

received: dict[str, Any] = {}


def _echo_task(case: str, annotation: Any) -> TaskDef[..., Any]:
    async def echo(value: Any) -> Any:
        received[current_job().id] = value
        return value

    echo.__annotations__ = {"value": annotation, "return": annotation}
    echo.__qualname__ = echo.__name__ = f"echo_{case}"
    return task(name=f"tests.codec.echo_{case}")(echo)


ECHO: dict[str, TaskDef[..., Any]] = {case: _echo_task(case, ann) for case, ann, _ in CASES}


def same(a: Any, b: Any) -> bool:
    """Equal, and of the same type where the type carries meaning (tuple vs list, set kinds)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, datetime | time):
        return a == b and (a.tzinfo is None) == (b.tzinfo is None)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    # one private loop for all hypothesis examples (no event loop fixture per example)
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as r:
        yield r


@pytest.mark.parametrize("codec", ["msgpack", "json"])
@pytest.mark.parametrize(("case", "annotation", "strategy"), CASES, ids=[c[0] for c in CASES])
def test_values_round_trip_through_dispatch_and_worker(
    runner: asyncio.Runner, codec: str, case: str, annotation: Any, strategy: Any
) -> None:
    app = Conveyor("memory://", codec=codec, clock=ManualClock(), concurrency=8)
    echo = ECHO[case]

    async def check(values: list[Any]) -> None:
        handles = await app.dispatch_many([echo(v) for v in values])
        stats = await app.drain()
        assert stats.succeeded == len(values), await app.dead_letters()
        for handle, value in zip(handles, values, strict=True):
            got = received.pop(handle.id)
            assert same(got, value), (got, value)
            assert same(await handle.result(), value)

    # a batch per example: many values through the worker for the price of one drain
    @settings(FAST, max_examples=25)
    @given(st.lists(strategy, min_size=1, max_size=8))
    def examples(values: list[Any]) -> None:
        runner.run(check(values))

    examples()


@pytest.mark.parametrize("codec", [MsgpackCodec(), JsonCodec()], ids=["msgpack", "json"])
@pytest.mark.parametrize(("case", "annotation", "strategy"), CASES, ids=[c[0] for c in CASES])
def test_codec_round_trip(codec: Any, case: str, annotation: Any, strategy: Any) -> None:
    @FAST
    @given(strategy)
    def examples(value: Any) -> None:
        assert same(codec.decode(codec.encode(value), annotation), value)

    examples()


def test_untyped_decoding_gives_plain_data() -> None:
    codec = MsgpackCodec()
    assert codec.decode(codec.encode({"a": [1, 2], "b": None})) == {"a": [1, 2], "b": None}


@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_wrong_types_are_refused_at_dispatch(runner: asyncio.Runner, codec: str) -> None:
    from conveyor import ArgumentError

    app = Conveyor("memory://", codec=codec, clock=ManualClock())
    bad: list[tuple[str, Any]] = [
        ("int", "1"),
        ("uuid", "not-a-uuid"),
        ("enum", "blue"),
        ("dataclass", {"x": "no", "y": 1.0}),
        ("pydantic", {"name": "a", "age": "old", "joined": "x"}),
        ("tuple", (1, "a")),  # too short
        ("bool", 1),
    ]

    async def check() -> None:
        for case, value in bad:
            with pytest.raises(ArgumentError):
                await ECHO[case](value).using(app).dispatch()

    runner.run(check())
    assert app.driver.history == []  # type: ignore[attr-defined]


def test_non_finite_float_is_refused_by_json_at_dispatch(runner: asyncio.Runner) -> None:
    # JSON has no infinity: a clear error at dispatch, not a broken job
    from conveyor import ArgumentError

    app = Conveyor("memory://", codec="json", clock=ManualClock())

    async def check() -> None:
        with pytest.raises(ArgumentError):
            await ECHO["float"](float("inf")).using(app).dispatch()

    runner.run(check())


# -- garbage never crashes a worker ----------------------------------------------------------


@pytest.mark.parametrize("codec", ["msgpack", "json"])
def test_random_payloads_are_dead_lettered_with_a_decode_error(
    runner: asyncio.Runner, codec: str
) -> None:
    @settings(FAST, max_examples=100)
    @given(st.binary(max_size=256))
    def examples(payload: bytes) -> None:
        app = Conveyor("memory://", codec=codec, clock=ManualClock(), concurrency=2)

        async def check() -> None:
            await app.connect()
            job_id = new_job_id()
            await app.driver.enqueue([NewJob(job_id, "tests.codec.echo_str", "default", payload)])
            stats = await app.drain()
            assert stats.dead == 1
            dead = await app.dead_letters()
            assert [d.id for d in dead] == [job_id]
            assert dead[0].status is JobStatus.DEAD
            assert dead[0].error is not None
            assert dead[0].error.type == DecodeError.__name__
            assert not received

        runner.run(check())

    examples()


def test_decode_envelope_raises_decode_error_only() -> None:
    codec: Callable[[], Any]
    for codec in (MsgpackCodec, JsonCodec):
        c = codec()
        for data in (b"", b"\xff", b"[1,2]", b"{}", c.encode({"v": 2})):
            with pytest.raises(DecodeError):
                c.decode_envelope(data)
