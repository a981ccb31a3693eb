"""Brokers behind one interface. The URL's scheme picks the driver, imported lazily.

This module is the only one that knows the concrete drivers.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from conveyor.drivers.base import Driver
from conveyor.exceptions import ConfigurationError


@dataclass(frozen=True, slots=True)
class _Entry:
    module: str
    cls: str
    extra: str | None
    requires: tuple[str, ...] = ()


_DRIVERS: dict[str, _Entry] = {
    "memory": _Entry("conveyor.drivers.memory", "MemoryDriver", None),
    "sqlite": _Entry("conveyor.drivers.sqlite", "SqliteDriver", None),
    "postgresql": _Entry(
        "conveyor.drivers.postgresql", "PostgresDriver", "postgresql", requires=("asyncpg",)
    ),
    "postgres": _Entry(
        "conveyor.drivers.postgresql", "PostgresDriver", "postgresql", requires=("asyncpg",)
    ),
    "mysql": _Entry("conveyor.drivers.mysql", "MySQLDriver", "mysql", requires=("asyncmy",)),
    "mariadb": _Entry("conveyor.drivers.mysql", "MySQLDriver", "mysql", requires=("asyncmy",)),
    "redis": _Entry("conveyor.drivers.redis", "RedisDriver", "redis", requires=("redis",)),
    "rediss": _Entry("conveyor.drivers.redis", "RedisDriver", "redis", requires=("redis",)),
}

_PLANNED = ("amqp", "amqps", "sqs", "nats")


def known_schemes() -> list[str]:
    return sorted(_DRIVERS)


def check_url(url: str) -> str:
    """Validate ``url``'s shape and scheme without importing anything; return the scheme."""
    return _entry(url)[0]


def _entry(url: str) -> tuple[str, _Entry]:
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(
            f"bad broker URL {url!r}: expected scheme://..., e.g. sqlite:///conveyor.db"
        )
    scheme = urlsplit(url).scheme.lower()
    entry = _DRIVERS.get(scheme)
    if entry is None:
        if scheme in _PLANNED:
            raise ConfigurationError(
                f"the {scheme}:// driver is not available in this version of conveyor"
            )
        raise ConfigurationError(
            f"unknown URL scheme {scheme!r} in {url!r}; known: {', '.join(known_schemes())}"
        )
    return scheme, entry


def create_driver(url: str, **options: Any) -> Driver:
    """Build the driver for ``url`` (not connected yet).

    Raises:
        ConfigurationError: malformed URL, unknown scheme, or the driver's extra missing.
    """
    scheme, entry = _entry(url)
    for requirement in entry.requires:
        try:
            importlib.import_module(requirement)
        except ImportError:
            raise ConfigurationError(
                f"the {scheme}:// driver needs {requirement}: pip install 'conveyor[{entry.extra}]'"
            ) from None
    module = importlib.import_module(entry.module)
    cls: type[Driver] = getattr(module, entry.cls)
    return cls.from_url(url, **options)


__all__ = ["Driver", "check_url", "create_driver", "known_schemes"]
