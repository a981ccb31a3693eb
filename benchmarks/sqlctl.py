"""Where the side-by-side runs on SQL find their servers, and each run's own database.

The servers (``CONVEYOR_BENCH_POSTGRES_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``;
``CONVEYOR_BENCH_MYSQL_URL``, default ``mysql://root@127.0.0.1:3306/test``) are shared with
other people's tests, so a run never touches their databases: the harness creates two
databases of the run's own (``cvbench_<hex>`` for the jobs a worker runs and
``cvbench_<hex>_s`` for the scratch jobs that only time enqueueing), and drops both when
the run is over (:mod:`benchmarks.compare.stores`). A framework finds them through
:func:`url` with ``RunSpec.database``.

Standard library only (see :mod:`benchmarks`): peers' venvs import it too.
"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlsplit, urlunsplit

#: target -> (environment variable, default server URL)
SERVERS = {
    "postgresql": ("CONVEYOR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    "mysql": ("CONVEYOR_BENCH_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"),
}
#: every database the benchmark creates starts with this (and only those are ever dropped)
PREFIX = "cvbench_"
SCRATCH_SUFFIX = "_s"


def server_url(target: str) -> str:
    env, default = SERVERS[target]
    return os.environ.get(env, default)


def url(target: str, database: str, *, scratch: bool = False) -> str:
    """The server's URL with ``database`` (or its scratch twin) as the database."""
    name = database + (SCRATCH_SUFFIX if scratch else "")
    if not name.startswith(PREFIX):
        raise ValueError(f"not a benchmark database: {name!r}")
    return urlunsplit(urlsplit(server_url(target))._replace(path="/" + name, query=""))


def ping(target: str) -> str | None:
    """``None`` when the server accepts a TCP connection, else why not."""
    parts = urlsplit(server_url(target))
    port = parts.port or (5432 if target == "postgresql" else 3306)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=2.0):
            return None
    except OSError as exc:
        return f"no {target} server at {parts.hostname}:{port} ({exc})"
