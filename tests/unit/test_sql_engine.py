"""The SQL drivers' shared engine, without a server: resources, options, migrations
bookkeeping and the idle tracker that spares idle workers their queries."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from conveyor.drivers._sql import migrations, resources
from conveyor.drivers._sql.idle import WorkTracker
from conveyor.drivers._sql.options import parse_options
from conveyor.exceptions import ConfigurationError, SchemaError

# -- resources -------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_every_dialect_has_numbered_migrations_and_named_queries(dialect: str) -> None:
    versions = [v for v, _ in resources.raw_migrations(dialect)]
    assert versions == list(range(1, len(versions) + 1))
    queries = resources.raw_queries(dialect)
    assert {"get_version", "set_version", "reserve", "complete", "get_job"} <= set(queries)
    assert all(not sql.lstrip().startswith("--") for sql in queries.values())


def test_render_fills_only_known_placeholders() -> None:
    sql = "SELECT '{a}' FROM {jobs} WHERE x = ANY('{1,2}')"
    assert (
        resources.render(sql, {"jobs": "t_jobs"})
        == "SELECT '{a}' FROM t_jobs WHERE x = ANY('{1,2}')"
    )


def test_split_script_honours_delimiter_blocks() -> None:
    script = """-- a comment
CREATE TABLE t (a INT);

DELIMITER //
CREATE PROCEDURE p()
BEGIN
    SELECT 1;
    SELECT 2;
END //
DELIMITER ;
DROP TABLE x;
"""
    assert resources.split_script(script) == [
        "CREATE TABLE t (a INT)",
        "CREATE PROCEDURE p()\nBEGIN\n    SELECT 1;\n    SELECT 2;\nEND",
        "DROP TABLE x",
    ]
    with pytest.raises(SchemaError):
        resources.split_script("SELECT 1")


@pytest.mark.parametrize("dialect", ["mysql"])
def test_mysql_scripts_split_into_whole_statements(dialect: str) -> None:
    for _, script in resources.raw_migrations(dialect):
        statements = resources.split_script(script)
        assert statements
        assert all("DELIMITER" not in s for s in statements)


# -- options ---------------------------------------------------------------------------


def test_options_are_split_off_the_url() -> None:
    options = parse_options(
        "postgresql://u:p@h:5/db?schema=jobs&table_prefix=x_&sslmode=require&pool_size=3",
        schemes=("postgresql",),
        allow_schema=True,
    )
    assert (options.schema, options.table_prefix, options.pool_size) == ("jobs", "x_", 3)
    assert options.url == "postgresql://u:p@h:5/db?sslmode=require"
    assert "p@" not in options.where  # never the password


@pytest.mark.parametrize(
    "query",
    ["schema=a-b", "schema=1x", "table_prefix=a%20b", "pool_size=0", "retention=x"],
)
def test_bad_options(query: str) -> None:
    with pytest.raises(ConfigurationError):
        parse_options(f"postgresql://h/db?{query}", schemes=("postgresql",), allow_schema=True)


# -- migrations ------------------------------------------------------------------------


class FakeTarget:
    def __init__(self, version: int | None) -> None:
        self.version = version
        self.applied: list[int] = []
        self.locked_calls = 0

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        self.locked_calls += 1
        yield

    async def read_version(self) -> int | None:
        return self.version

    async def apply(self, version: int, script: str) -> None:
        self.applied.append(version)
        self.version = version


SCRIPTS = [(1, "v1"), (2, "v2"), (3, "v3")]


async def test_migrate_applies_what_is_missing_under_the_lock() -> None:
    target = FakeTarget(1)
    assert await migrations.migrate(target, SCRIPTS, "db") == 3
    assert target.applied == [2, 3]
    assert target.locked_calls == 1
    assert await migrations.migrate(target, SCRIPTS, "db") == 3
    assert target.applied == [2, 3]  # idempotent


async def test_migrate_up_to_a_version_and_refuse_newer() -> None:
    target = FakeTarget(None)
    assert await migrations.migrate(target, SCRIPTS, "db", upto=2) == 2
    assert target.applied == [1, 2]
    with pytest.raises(SchemaError, match="upgrade conveyor"):
        await migrations.migrate(FakeTarget(4), SCRIPTS, "db")


def test_require_current_is_one_line() -> None:
    migrations.require_current(3, 3, "db")
    for version in (None, 2):
        with pytest.raises(SchemaError, match="run `conveyor migrate`") as caught:
            migrations.require_current(version, 3, "db")
        assert "\n" not in str(caught.value)


# -- the idle tracker --------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_an_answer_holds_until_something_changes() -> None:
    clock = Clock()
    tracker = WorkTracker(trusted_poll=1.0, clock=clock)
    tracker.trusted = True
    key = ("q",)
    assert tracker.dirty(key)  # never asked
    tracker.answered(key, clock(), complete=True, found=0, due_in=None)
    assert not tracker.dirty(key)
    clock.t += 0.5
    assert not tracker.dirty(key)
    tracker.signal("other")
    assert not tracker.dirty(key)
    tracker.signal("q")
    assert tracker.dirty(key)


def test_staleness_due_times_and_announcements() -> None:
    clock = Clock()
    tracker = WorkTracker(trusted_poll=1.0, clock=clock)
    tracker.trusted = True
    key = ("q",)
    tracker.answered(key, clock(), complete=True, found=0, due_in=0.3)
    clock.t += 0.29
    assert not tracker.dirty(key)
    clock.t += 0.02
    assert tracker.dirty(key)  # the job the database announced is due
    tracker.answered(key, clock(), complete=True, found=0, due_in=None)
    tracker.signal("q", due_in=0.2)  # a delayed job was added
    assert not tracker.dirty(key)
    clock.t += 0.21
    assert tracker.dirty(key)
    tracker.answered(key, clock(), complete=True, found=0, due_in=None)
    clock.t += 1.0
    assert tracker.dirty(key)  # the safety net


def test_a_full_batch_or_a_lost_channel_means_ask_again() -> None:
    clock = Clock()
    tracker = WorkTracker(clock=clock)
    tracker.trusted = True
    key = ("q",)
    tracker.answered(key, clock(), complete=False, found=10, due_in=None)
    assert tracker.dirty(key)
    tracker.answered(key, clock(), complete=True, found=0, due_in=None)
    clock.t += 0.01
    tracker.signal_all()
    assert tracker.dirty(key)


def test_untrusted_polling_backs_off() -> None:
    clock = Clock()
    tracker = WorkTracker(min_poll=0.05, max_poll=0.5, clock=clock)
    key = ("q",)
    gaps = []
    for _ in range(6):
        tracker.answered(key, clock(), complete=True, found=0, due_in=None)
        gaps.append(round(tracker.deadline(key) - clock(), 3))
        clock.t = tracker.deadline(key)
    assert gaps == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]
