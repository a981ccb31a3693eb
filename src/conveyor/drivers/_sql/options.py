"""Options of the SQL drivers, read from the broker URL's query string.

``?table_prefix=app_conveyor_`` names the tables (default ``conveyor_``);
``?schema=jobs`` (PostgreSQL) puts them in a schema of their own; ``?pool_size=10``
bounds the connections one driver opens; ``?retention=86400`` is how many seconds a
cancelled job stays visible before workers prune it. Options the driver does not know
are left in the URL for the client library (``sslmode=...`` for asyncpg, say).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from conveyor.exceptions import ConfigurationError

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_PREFIX = re.compile(r"[A-Za-z0-9_]{0,40}")

DEFAULT_PREFIX = "conveyor_"
DEFAULT_POOL_SIZE = 10
DEFAULT_RETENTION = 86400.0


@dataclass(frozen=True, slots=True)
class SqlOptions:
    """What a SQL driver takes from its URL, plus the URL without those options."""

    url: str
    table_prefix: str = DEFAULT_PREFIX
    schema: str | None = None
    pool_size: int = DEFAULT_POOL_SIZE
    retention: float = DEFAULT_RETENTION

    @property
    def where(self) -> str:
        """Host, database and namespace, for messages (never the password)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "localhost"
        port = f":{parts.port}" if parts.port else ""
        space = f"{self.schema}." if self.schema else ""
        return f"{parts.scheme}://{host}{port}{parts.path} ({space}{self.table_prefix}*)"


def _number(key: str, value: str, url: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(f"{key} must be a number, not {value!r} in {url!r}") from None
    if number < 0:
        raise ConfigurationError(f"{key} must not be negative in {url!r}")
    return number


def parse_options(url: str, *, schemes: tuple[str, ...], allow_schema: bool) -> SqlOptions:
    """Split Conveyor's options off ``url``; validate names that end up in SQL text."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in schemes:
        raise ConfigurationError(f"not a {schemes[0]}:// URL: {url!r}")
    values: dict[str, object] = {}
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "table_prefix":
            if not _PREFIX.fullmatch(value):
                raise ConfigurationError(
                    f"table_prefix {value!r} must be letters, digits and _ (at most 40)"
                )
            values[key] = value
        elif key == "schema":
            if not allow_schema:
                raise ConfigurationError(
                    f"{parts.scheme}:// has no schemas: the database is the URL's path; "
                    "use ?table_prefix= to share a database"
                )
            if not _IDENTIFIER.fullmatch(value):
                raise ConfigurationError(f"schema {value!r} must be a plain SQL identifier")
            values[key] = value
        elif key == "pool_size":
            size = int(_number(key, value, url))
            if size < 1:
                raise ConfigurationError(f"pool_size must be at least 1 in {url!r}")
            values[key] = size
        elif key == "retention":
            values[key] = _number(key, value, url)
        else:
            rest.append((key, value))
    clean = urlunsplit(parts._replace(query=urlencode(rest)))
    return SqlOptions(url=clean, **values)  # type: ignore[arg-type]
