"""SQL in resource files: named queries and versioned migration scripts, per dialect.

Each dialect has a folder next to this module (``postgresql/``, ``mysql/``) holding
``queries.sql`` (blocks headed ``-- name: <name>``) and ``schema_v1.sql``,
``schema_v2.sql``, ...: script N upgrades a database at version N-1 to N.

Table and routine names are written as placeholders (``{jobs}``, ``{meta}``,
``{reserve}``, ...) and filled in for the configured schema and table prefix; only
the placeholder names a driver passes are replaced, so SQL may use braces freely.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources

from conveyor.exceptions import SchemaError

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _folder(dialect: str) -> resources.abc.Traversable:
    return resources.files(__package__ or "conveyor.drivers._sql").joinpath(dialect)


@functools.cache
def raw_queries(dialect: str) -> dict[str, str]:
    """The named queries of ``<dialect>/queries.sql``, placeholders unfilled."""
    text = _folder(dialect).joinpath("queries.sql").read_text(encoding="utf-8")
    out: dict[str, str] = {}
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition("\n")
        lines = body[: body.rindex(";")].strip().splitlines()
        while lines and lines[0].lstrip().startswith("--"):  # the query's own comment
            lines.pop(0)
        out[name.strip()] = "\n".join(lines).strip()
    return out


@functools.cache
def raw_migrations(dialect: str) -> tuple[tuple[int, str], ...]:
    """``(version, script)`` in order; versions must run 1..N without gaps."""
    found: dict[int, str] = {}
    for entry in _folder(dialect).iterdir():
        match = re.fullmatch(r"schema_v(\d+)\.sql", entry.name)
        if match:
            found[int(match.group(1))] = entry.read_text(encoding="utf-8")
    if not found or sorted(found) != list(range(1, len(found) + 1)):
        raise SchemaError(f"{dialect} migrations are not numbered 1..N: {sorted(found)}")
    return tuple(sorted(found.items()))


def render(sql: str, names: Mapping[str, str]) -> str:
    """Fill ``{placeholder}``\\ s that ``names`` knows; leave any other braces alone."""

    def fill(match: re.Match[str]) -> str:
        return names.get(match.group(1), match.group(0))

    return _PLACEHOLDER.sub(fill, sql)


def queries(dialect: str, names: Mapping[str, str]) -> dict[str, str]:
    """The dialect's named queries with table names filled in."""
    return {name: render(sql, names) for name, sql in raw_queries(dialect).items()}


def migrations(dialect: str, names: Mapping[str, str]) -> tuple[tuple[int, str], ...]:
    """The dialect's migration scripts with table names filled in."""
    return tuple((version, render(sql, names)) for version, sql in raw_migrations(dialect))


def split_script(script: str) -> list[str]:
    """Statements of a script, for servers that take one statement at a time (MySQL).

    Statements end with ``;`` at the end of a line; ``DELIMITER xx`` lines change that
    terminator (as in the ``mysql`` client) so routine bodies can hold semicolons.
    ``--`` comment lines are dropped.
    """
    delimiter = ";"
    statements: list[str] = []
    buf: list[str] = []
    for line in script.splitlines():
        stripped = line.strip()
        if stripped.upper().startswith("DELIMITER "):
            delimiter = stripped.split(None, 1)[1]
            continue
        if not buf and (not stripped or stripped.startswith("--")):
            continue
        if stripped.endswith(delimiter):
            buf.append(line.rstrip()[: -len(delimiter)])
            statements.append("\n".join(buf).strip())
            buf = []
        else:
            buf.append(line)
    if any(ln.strip() and not ln.strip().startswith("--") for ln in buf):
        raise SchemaError(f"unterminated SQL statement at the end of a script: {buf!r}")
    return statements
