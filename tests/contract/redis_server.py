"""A private ``redis-server`` for tests that kill, restart or reconfigure their server.

The shared Redis on 6379 is never restarted or reconfigured: a test that needs to do
that starts its own server on a free port in its ``tmp_path``, with no persistence
unless it asks for some, and kills it at the end.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process; ``restart()`` brings it back on the same port."""

    def __init__(self, directory: Path, *args: str) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1":
                pytest.fail("redis-server is not installed (CONVEYOR_REQUIRE_SERVICES=1)")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.directory = directory
        self.args = args
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def start(self) -> None:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            *self.args,
        ]
        log = self.directory / "redis.log"
        with log.open("ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with self.client() as client:
                    if client.ping():
                        return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start: see {log}") from None
                time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, like a crash or an OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def kill_clients(self, kind: str) -> int:
        """``CLIENT KILL TYPE kind`` (normal, pubsub); returns how many were killed."""
        with self.client() as client:
            killed: int = client.execute_command("CLIENT", "KILL", "TYPE", kind, "SKIPME", "yes")
            return killed

    def command_calls(self) -> dict[str, int]:
        """Calls per command since start (scripts' own calls included)."""
        with self.client() as client:
            stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(s["calls"]) for name, s in stats.items()}
