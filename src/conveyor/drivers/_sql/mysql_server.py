"""Which server a ``mysql://`` URL reaches: MySQL or MariaDB, and whether it can run Conveyor.

The driver asks ``SELECT VERSION()`` once per pool and refuses a server that lacks what
the schema needs, with one line naming the server and the versions that work, instead of
a syntax error from the first reserve:

* ``SELECT ... FOR UPDATE SKIP LOCKED``: MySQL 8.0.1, MariaDB 10.6.
* ``JSON_TABLE`` (the reserve and complete procedures): MySQL 8.0.4, MariaDB 10.6.

Every MySQL 8.0 general-availability release (8.0.11 on) has both, as have 8.4 and 9.x.
The SQL itself is the same on both flavours: what MariaDB alone has (``RETURNING``,
``ADD COLUMN IF NOT EXISTS``, ``SET x = GREATEST(@@x, n)``) is not used, and what MySQL
alone has (``INSERT ... AS new``) neither. The one path that differs, binding a batch of
rows in one command, is chosen by the protocol capability the server announces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARIADB = "MariaDB"
MYSQL = "MySQL"

#: The oldest server of each flavour that runs the schema (see the module docstring).
MINIMUM = {MYSQL: (8, 0, 4), MARIADB: (10, 6, 0)}
SUPPORTED = "MySQL 8.0+ or MariaDB 10.6+"

_MARIADB_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)-MariaDB", re.IGNORECASE)
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class ServerVersion:
    """A server as ``SELECT VERSION()`` describes it."""

    flavour: str  # MYSQL or MARIADB
    version: tuple[int, int, int]
    text: str  # VERSION() as the server said it

    @property
    def is_mariadb(self) -> bool:
        return self.flavour == MARIADB

    @property
    def supported(self) -> bool:
        return self.version >= MINIMUM[self.flavour]

    def __str__(self) -> str:
        return f"{self.flavour} {'.'.join(map(str, self.version))}"


def parse_version(text: str) -> ServerVersion:
    """Read ``VERSION()``: ``10.11.6-MariaDB-0+deb12u1``, ``8.0.36-0ubuntu0.22.04.1``,
    ``8.4.3``, ``9.7.4-2``, and the ``5.5.5-10.11.6-MariaDB`` a MariaDB proxy may show.

    A text with no version number reads as MySQL 0.0.0, which is refused.
    """
    mariadb = _MARIADB_VERSION.search(text)
    if mariadb is not None:
        major, minor, patch = (int(g) for g in mariadb.groups())
        return ServerVersion(MARIADB, (major, minor, patch), text)
    found = _VERSION.search(text)
    if found is None:
        return ServerVersion(MYSQL, (0, 0, 0), text)
    major, minor, patch = (int(g or 0) for g in found.groups())
    return ServerVersion(MYSQL, (major, minor, patch), text)


def unsupported_message(server: ServerVersion, where: str) -> str | None:
    """The one line that refuses ``server``, or ``None`` if Conveyor runs on it."""
    if server.supported:
        return None
    return (
        f"{where} runs {server} ({server.text!r}), which lacks SKIP LOCKED or JSON_TABLE: "
        f"the mysql:// driver needs {SUPPORTED}"
    )
