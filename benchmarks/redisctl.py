"""The benchmark's own few Redis commands (PING, FLUSHDB, INFO), in the standard library.

The Redis at ``CONVEYOR_BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/9``) is
shared with other people's tests, so the harness only ever flushes *its* database
(``FLUSHDB`` on the URL's db, and on the scratch db next to it), never the server.

Standard library only (see :mod:`benchmarks`): peers' venvs import it too.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from urllib.parse import urlsplit

ENV = "CONVEYOR_BENCH_REDIS_URL"
DEFAULT_URL = "redis://127.0.0.1:6379/9"


def url() -> str:
    """The benchmark database's URL."""
    return os.environ.get(ENV, DEFAULT_URL)


def parts(redis_url: str | None = None) -> tuple[str, int, int]:
    """``(host, port, db)`` of a ``redis://host:port/db`` URL."""
    split = urlsplit(redis_url or url())
    db = int(split.path.strip("/") or 0)
    return split.hostname or "127.0.0.1", split.port or 6379, db


def with_db(db: int, redis_url: str | None = None) -> str:
    host, port, _ = parts(redis_url)
    return f"redis://{host}:{port}/{db}"


def scratch_url(redis_url: str | None = None) -> str:
    """A second database for jobs that are enqueued only to time enqueueing, never run."""
    _, _, db = parts(redis_url)
    return with_db(db + 1, redis_url)


def _encode(*args: str | int | bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(f: socket.SocketIO | object) -> object:
    line = f.readline()  # type: ignore[attr-defined]
    if not line:
        raise ConnectionError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"Redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        if size < 0:
            return None
        data = f.read(size + 2)  # type: ignore[attr-defined]
        return data[:-2].decode()
    if kind == b"*":
        return [_reply(f) for _ in range(int(rest))]
    raise RuntimeError(f"unexpected Redis reply {line!r}")


def command(*args: str | int, redis_url: str | None = None, timeout: float = 5.0) -> object:
    """Run one command on the URL's database and return its reply."""
    host, port, db = parts(redis_url)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        f = sock.makefile("rb")
        sock.sendall(_encode("SELECT", db) + _encode(*args))
        _reply(f)
        return _reply(f)


def ping(redis_url: str | None = None) -> str | None:
    """``None`` when Redis answers, else why not."""
    try:
        command("PING", redis_url=redis_url, timeout=2.0)
    except (OSError, RuntimeError) as exc:
        return f"no Redis at {redis_url or url()} ({exc})"
    return None


def flush(redis_url: str | None = None) -> None:
    """``FLUSHDB`` the benchmark database and its scratch database (nothing else)."""
    command("FLUSHDB", redis_url=redis_url)
    command("FLUSHDB", redis_url=scratch_url(redis_url))


def server_facts(redis_url: str | None = None) -> dict[str, str]:
    """Version and persistence settings of the server, for the report."""
    try:
        info = str(command("INFO", "server", redis_url=redis_url))
        persistence = str(command("INFO", "persistence", redis_url=redis_url))
    except (OSError, RuntimeError):
        return {}
    fields = dict(line.split(":", 1) for line in (info + persistence).splitlines() if ":" in line)
    keys = ("redis_version", "aof_enabled", "rdb_bgsave_in_progress", "process_id")
    return {k: fields[k].strip() for k in keys if k in fields}


class PrivateServer:
    """A ``redis-server`` of the benchmark's own on a free loopback port (``--private-redis``).

    Same binary and persistence settings as the shared server here (no RDB snapshots, no
    AOF), but no other tests' clients, ``CLIENT KILL``s or restarts: for runs that must
    not be disturbed. Started and stopped by the harness.
    """

    def __init__(self, binary: str = "redis-server") -> None:
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self, timeout: float = 10.0) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        server = f"redis://127.0.0.1:{self.port}/9"
        deadline = time.monotonic() + timeout
        while ping(server) is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"could not start {self.binary} on port {self.port}")
            time.sleep(0.05)
        return server

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
