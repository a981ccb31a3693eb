"""A private MySQL (Oracle's, 8.0 or later) server, so ``mysql://`` is tested on MySQL as
well as on the shared MariaDB on 3306.

Debian 12 ships MariaDB as its ``mysqld``; a MySQL server is found by:

* ``CONVEYOR_TEST_MYSQL8_URL``: a MySQL 8+ server that is already running (used as is);
* ``CONVEYOR_MYSQLD``: the path of a MySQL 8+ ``mysqld`` to start;
* otherwise ``/opt/mysql*/usr/sbin/mysqld``: a MySQL server package unpacked into a
  private root, as ``tests/contract/install_mysql.sh`` does (Debian unstable's
  ``mysql-server-core`` with the newer C/C++ runtime it needs, run by that root's own
  dynamic loader; nothing is installed into the system).

The server starts once per test process, on first use, in a temporary data directory on a
free loopback port (``--initialize-insecure``: root with no password), and is stopped at
the end of the session. Without a binary the tests that need it skip, also in CI, unless
``CONVEYOR_REQUIRE_MYSQL8=1`` makes a missing server a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import NoReturn

import pytest

from tests.contract.private_root import find_server

URL_ENV = "CONVEYOR_TEST_MYSQL8_URL"
MYSQLD_ENV = "CONVEYOR_MYSQLD"
REQUIRE_ENV = "CONVEYOR_REQUIRE_MYSQL8"
SEARCH = "/opt/mysql*/usr/sbin/mysqld"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_mysqld() -> list[str] | None:
    """The command that runs a MySQL (not MariaDB) ``mysqld`` of version 8+, or ``None``."""

    def mysql_8(version: str) -> bool:
        if "mariadb" in version.lower():
            return False
        words = version.split(" Ver ", 1)[-1].split()
        return bool(words) and words[0].split(".")[0].isdigit() and int(words[0].split(".")[0]) >= 8

    return find_server(MYSQLD_ENV, SEARCH, mysql_8)


class MySQLServer:
    """One throwaway ``mysqld``: ``install()``, ``start()``, ``stop()``, ``remove()``."""

    def __init__(self, command: list[str], directory: Path | None = None) -> None:
        self.command = command
        self.dir = directory or Path(tempfile.mkdtemp(prefix="conveyor-mysql8-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root = Path(command[-1]).resolve().parents[2]
        self._paths = [
            f"--basedir={root / 'usr'}",
            f"--lc-messages-dir={root / 'usr/share/mysql'}",
            f"--plugin-dir={root / 'usr/lib/mysql/plugin'}",
        ]
        self._user = ["--user=root"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/test"

    def install(self) -> None:
        subprocess.run(
            [*self.command, "--no-defaults", "--initialize-insecure", *self._user,
             f"--datadir={self.dir / 'data'}", *self._paths],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*self.command, "--no-defaults", *self._user, f"--datadir={self.dir / 'data'}",
             *self._paths, f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.dir / 'sock'}", "--mysqlx=OFF", "--secure-file-priv=",
             f"--pid-file={self.dir / 'pid'}", f"--log-error={self.dir / 'err.log'}",
             "--innodb-buffer-pool-size=64M", "--performance-schema=OFF"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not self._accepts():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mysqld did not start: see {self.dir / 'err.log'}")
            time.sleep(0.05)
        self._create_database()

    def _accepts(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def _create_database(self) -> None:
        """``CREATE DATABASE test``, on a loop of its own (callers may be inside one)."""
        import asyncio
        from concurrent.futures import ThreadPoolExecutor

        import asyncmy

        async def create() -> None:
            for _ in range(100):  # the port opens a moment before logins are taken
                try:
                    conn = await asyncmy.connect(host="127.0.0.1", port=self.port, user="root")
                    break
                except Exception:
                    await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"mysqld takes no login: see {self.dir / 'err.log'}")
            try:
                async with conn.cursor() as cur:
                    await cur.execute("CREATE DATABASE IF NOT EXISTS test")
            finally:
                conn.close()

        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, create()).result()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


_shared: MySQLServer | None = None


def shared_url() -> str:
    """The URL of this process's private MySQL server, started on first use.

    Skips the test when no MySQL 8+ binary is here (see the module docstring).
    """
    global _shared
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    if _shared is None:
        command = find_mysqld()
        if command is None:
            skip_or_fail(f"no MySQL 8+ mysqld ({MYSQLD_ENV} or {SEARCH}) to start")
        server = MySQLServer(command)
        try:
            server.install()
            server.start()
        except BaseException:
            server.remove()
            raise
        _shared = server
    return _shared.url


def stop_shared() -> None:
    """Stop and remove this process's private server, if it was started."""
    global _shared
    if _shared is not None:
        _shared.remove()
        _shared = None
