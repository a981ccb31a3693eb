"""asyncmy as the MySQL driver uses it: connection arguments from the URL, which server
errors mean what, and small helpers for statements and result sets.

Connections run in ``READ COMMITTED`` (``SKIP LOCKED`` needs it to skip rows without
waiting on the gaps beside them), in autocommit (every multi-statement step opens its own
transaction), and with a statement cache, so positional queries run as server-side
prepared statements and, on MariaDB, a batch of rows is bound in one bulk command.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from asyncmy import errors as my_errors

from conveyor.drivers._sql.options import SqlOptions
from conveyor.exceptions import ConfigurationError

CONNECT_TIMEOUT = 10
INIT = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED"

#: Server error codes that mean the connection is gone or the server is going away.
LOST_CODES = frozenset({1053, 1077, 1927, 2003, 2006, 2013, 2055, 4031})
#: Deadlock victim, lock wait timeout: the statement was rolled back and may run again.
RETRY_CODES = frozenset({1213, 1205})
ATTEMPTS = 4
#: Table or routine missing: the database was never migrated.
NO_SCHEMA_CODES = frozenset({1146, 1305})
URL_KEYS = {"unix_socket", "charset", "connect_timeout"}


def code_of(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def is_lost(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError | my_errors.InterfaceError):
        return True
    return isinstance(exc, my_errors.MySQLError) and code_of(exc) in LOST_CODES


def connect_args(options: SqlOptions) -> dict[str, Any]:
    parts = urlsplit(options.url)
    args: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or 3306,
        "user": unquote(parts.username) if parts.username else "root",
        "password": unquote(parts.password) if parts.password else "",
        "db": unquote(parts.path.lstrip("/")) or None,
        "autocommit": True,
        "charset": "utf8mb4",
        "connect_timeout": CONNECT_TIMEOUT,
        "init_command": INIT,
        # positional queries run as server-side prepared statements (binary protocol),
        # and on MariaDB a batch insert is one COM_STMT_BULK_EXECUTE
        "stmt_cache_size": 64,
    }
    if args["db"] is None:
        raise ConfigurationError(f"no database in {options.url!r}: mysql://host/DATABASE")
    for key, value in parse_qsl(parts.query):
        if key not in URL_KEYS:
            raise ConfigurationError(
                f"unknown option {key!r} in MySQL URL (known: table_prefix, pool_size, "
                f"retention, {', '.join(sorted(URL_KEYS))})"
            )
        args[key] = int(value) if key == "connect_timeout" else value
    return args


def marks(values: Sequence[Any]) -> str:
    """``(%s, %s, ...)``: a parameter list for ``IN``."""
    return "(" + ", ".join(["%s"] * len(values)) + ")"


async def drain(cur: Any) -> list[Any]:
    """The rows of the first result set, and every other result set read past."""
    rows = list(await cur.fetchall())
    while await cur.nextset():
        pass
    return rows
