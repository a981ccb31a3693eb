"""The caller's connection, for transactional enqueue.

``dispatch(connection=...)`` accepts the driver's own connection type (an asyncpg
connection, an asyncmy connection) or a SQLAlchemy ``AsyncSession`` /
``AsyncConnection`` on the same kind of database. SQLAlchemy is reached through its
own ``execute``, never through the raw connection underneath, because SQLAlchemy
begins its transaction lazily: a statement sent past it would run outside the
caller's transaction and commit on its own.
"""

from __future__ import annotations

import re
from typing import Any

from conveyor.exceptions import ConfigurationError


def is_sqlalchemy(connection: Any) -> bool:
    return type(connection).__module__.startswith("sqlalchemy.")


async def sqlalchemy_connection(connection: Any, dialects: tuple[str, ...]) -> Any:
    """The ``AsyncConnection`` of an ``AsyncSession`` or ``AsyncConnection``.

    Raises:
        ConfigurationError: a sync session, or a database of another kind.
    """
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    if isinstance(connection, AsyncSession):
        conn = await connection.connection()
    elif isinstance(connection, AsyncConnection):
        conn = connection
    else:
        raise ConfigurationError(
            "transactional enqueue takes a SQLAlchemy AsyncSession or AsyncConnection, "
            f"not {type(connection).__name__}"
        )
    name = conn.dialect.name
    if name not in dialects:
        raise ConfigurationError(
            f"this broker is {dialects[0]}, but the session is connected to {name}: "
            "enqueue in a transaction on the broker's own database"
        )
    return conn


async def sqlalchemy_execute(conn: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    """Run ``sql`` (``:name`` parameters) in ``conn``'s transaction; return its rows."""
    from sqlalchemy import text

    result = await conn.execute(text(sql), params)
    return list(result.fetchall()) if result.returns_rows else []


def named_parameters(sql: str, style: str) -> str:
    """Rewrite ``$1``-style (``style="dollar"``) or ``%s``-style (``"format"``) parameters
    as SQLAlchemy's ``:p1``, ``:p2``, ..."""
    if style == "dollar":
        return re.sub(r"\$(\d+)", r":p\1", sql)
    counter = iter(range(1, 10_000))
    return re.sub(r"%s", lambda _: f":p{next(counter)}", sql)
