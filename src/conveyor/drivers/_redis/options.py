"""``redis://`` and ``rediss://`` URLs: Conveyor's own options, and redis-py's.

``redis://[[user]:password@]host[:port][/db][?option=value&...]``. Conveyor reads
``prefix`` (default ``conveyor``: the keys' prefix, so several apps can share one Redis),
``retries`` (how often one call is retried on a lost connection, with exponential backoff)
and ``max_connections`` (the size of the connection pool); every other option is redis-py's
(``socket_timeout``, ``ssl_ca_certs``, ``ssl_cert_reqs``, ...). ``rediss://`` verifies the
server's certificate and host name unless told otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from conveyor.exceptions import ConfigurationError

DEFAULT_PREFIX = "conveyor"
DEFAULT_RETRIES = 8
DEFAULT_MAX_CONNECTIONS = 64

#: redis-py's URL options that make sense here (anything else is a typo).
REDIS_OPTIONS = frozenset(
    {
        "db",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_read_size",
        "health_check_interval",
        "client_name",
        "protocol",
        "ssl_cert_reqs",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_ca_data",
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_password",
        "ssl_check_hostname",
        "ssl_min_version",
        "ssl_ciphers",
    }
)

#: What Conveyor passes to redis-py unless the URL says otherwise.
_DEFAULTS: dict[str, Any] = {
    "socket_timeout": 30.0,  # a hung connection fails (and is retried) instead of blocking
    "socket_connect_timeout": 5.0,
    "socket_keepalive": True,
}

_PREFIX = re.compile(r"[^{}\s]{1,100}")

#: redis-py's number options, checked here: it would fail only at the first call, as an
#: outage (retried) or a bare ValueError. Seconds: more than 0 (``health_check_interval``:
#: 0 turns it off); counts: the least allowed.
_SECONDS = {"socket_timeout": 0.0, "socket_connect_timeout": 0.0, "health_check_interval": -1.0}
_COUNTS = {"db": 0, "socket_read_size": 1}


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Where and how to connect, and the app's key names."""

    url: str  # for redis-py: Conveyor's own options taken out
    prefix: str = DEFAULT_PREFIX
    retries: int = DEFAULT_RETRIES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    defaults: dict[str, Any] = field(default_factory=lambda: dict(_DEFAULTS))

    @property
    def base(self) -> str:
        """The start of every key: the prefix as a hash tag, so one app is one slot."""
        return f"{{{self.prefix}}}:"

    @property
    def queues_key(self) -> str:
        return f"{self.base}queues"

    @property
    def work_channel(self) -> bytes:
        return f"{self.base}ev:work".encode()

    @property
    def done_channel(self) -> bytes:
        return f"{self.base}ev:done".encode()

    @property
    def cancel_channel(self) -> bytes:
        return f"{self.base}ev:cancel".encode()


def parse(url: str) -> RedisOptions:
    """Split ``url`` into Conveyor's options and the URL redis-py gets.

    Raises:
        ConfigurationError: not a Redis URL, an unknown option, or a bad value.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ConfigurationError(f"not a redis:// or rediss:// URL: {url!r}")
    if not parts.hostname:
        raise ConfigurationError(f"no host in Redis URL {url!r}: expected redis://host:6379/0")
    try:
        parts.port  # noqa: B018  # validates the port
    except ValueError as exc:
        raise ConfigurationError(f"bad port in Redis URL {url!r}: {exc}") from None
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ConfigurationError(f"bad database {path!r} in Redis URL {url!r}: expected /0../15")
    prefix = DEFAULT_PREFIX
    retries = DEFAULT_RETRIES
    max_connections = DEFAULT_MAX_CONNECTIONS
    passed: list[tuple[str, str]] = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "prefix":
            if not _PREFIX.fullmatch(value):
                raise ConfigurationError(
                    f"bad key prefix {value!r}: 1 to 100 characters, no braces or spaces"
                )
            prefix = value
        elif key in ("retries", "max_connections"):
            try:
                number = int(value)
            except ValueError:
                raise ConfigurationError(f"{key} must be a whole number, not {value!r}") from None
            if number < (0 if key == "retries" else 1):
                raise ConfigurationError(f"{key} is too small: {number}")
            if key == "retries":
                retries = number
            else:
                max_connections = number
        elif key in REDIS_OPTIONS:
            _check(key, value)
            passed.append((key, value))
        else:
            known = ", ".join(sorted({"prefix", "retries", "max_connections", *REDIS_OPTIONS}))
            raise ConfigurationError(f"unknown option {key!r} in Redis URL; known: {known}")
    redis_url = urlunsplit((scheme, parts.netloc, parts.path, urlencode(passed), ""))
    return RedisOptions(redis_url, prefix, retries, max_connections)


def _check(key: str, value: str) -> None:
    """A redis-py number option in the URL is a number it takes, or a ConfigurationError."""
    if key in _SECONDS:
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not seconds > _SECONDS[key] or math.isinf(seconds):
            least = "0 or more" if _SECONDS[key] < 0 else "above 0"
            raise ConfigurationError(f"{key} must be a number {least} (seconds), not {value!r}")
    elif key in _COUNTS:
        try:
            number = int(value)
        except ValueError:
            raise ConfigurationError(f"{key} must be a whole number, not {value!r}") from None
        if number < _COUNTS[key]:
            raise ConfigurationError(f"{key} is too small: {number}")
    elif key == "protocol" and value not in ("2", "3"):
        raise ConfigurationError(f"protocol must be 2 or 3, not {value!r}")
