"""Versioned schema upgrades, safe to run twice or from several processes at once.

The version lives in the ``{meta}`` table (key ``schema_version``). :func:`migrate`
takes a database-wide lock (PostgreSQL: an advisory lock; MySQL: ``GET_LOCK``), reads
the version, runs each newer ``schema_vN.sql`` and records N after each one, so an
interrupted upgrade resumes where it stopped. The second of two racing processes
waits for the lock, then finds nothing left to do.

SQL servers are never migrated behind the user's back: a driver checks the version
once, on first use, and refuses a database that is not current (:func:`require_current`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from conveyor.exceptions import SchemaError


class MigrationTarget(Protocol):
    """A database as :func:`migrate` needs it; each driver adapts its connection."""

    def locked(self) -> AbstractAsyncContextManager[None]:
        """Hold the migration lock for the block (one migrator at a time)."""
        ...

    async def read_version(self) -> int | None:
        """The recorded version, or ``None`` if there is no Conveyor schema yet."""
        ...

    async def apply(self, version: int, script: str) -> None:
        """Run one migration script and record ``version``."""
        ...


async def migrate(
    target: MigrationTarget,
    scripts: Sequence[tuple[int, str]],
    where: str,
    *,
    upto: int | None = None,
) -> int:
    """Bring the schema to ``upto`` (default: the latest version); return the version.

    Raises:
        SchemaError: the database is newer than this version of Conveyor knows.
    """
    latest = scripts[-1][0] if upto is None else upto
    async with target.locked():
        current = await target.read_version() or 0
        known = scripts[-1][0]
        if current > known:
            raise SchemaError(
                f"{where} has schema version {current}, newer than this version of "
                f"conveyor knows ({known}): upgrade conveyor"
            )
        for version, script in scripts:
            if current < version <= latest:
                await target.apply(version, script)
                current = version
    return current


def require_current(version: int | None, latest: int, where: str) -> None:
    """Raise the one-line :class:`SchemaError` a worker or producer shows on a stale database."""
    if version == latest:
        return
    if version is None:
        raise SchemaError(f"{where} has no Conveyor schema: run `conveyor migrate`")
    if version < latest:
        raise SchemaError(
            f"{where} is at schema version {version}, this conveyor needs {latest}: "
            "run `conveyor migrate`"
        )
    raise SchemaError(
        f"{where} has schema version {version}, newer than this conveyor knows ({latest}): "
        "upgrade conveyor"
    )
