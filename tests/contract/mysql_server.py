"""Private MySQL servers (Oracle's), so ``mysql://`` is tested on MySQL 8 and MySQL 9 as
well as on the shared MariaDB on 3306.

Debian 12 ships MariaDB as its ``mysqld``. Two MySQL releases are tested, each under a
contract-suite id of its own (:data:`RELEASES`):

* ``mysql8``: MySQL 8 (8.0.x: Ubuntu 24.04's ``mysql-server-core-8.0``);
* ``mysql9``: MySQL 9 or later (9.x: Debian unstable's ``mysql-server-core``).

Each is found by (``N`` being 8 or 9):

* ``CONVEYOR_TEST_MYSQLN_URL``: such a server that is already running (used as is);
* ``CONVEYOR_MYSQLDN``: the path of such a ``mysqld`` to start;
* otherwise the first ``/opt/mysql*/usr/sbin/mysqld`` whose ``--version`` is that
  release's: a server package unpacked into a private root, as
  ``tests/contract/install_mysql.sh 8.0`` (``/opt/mysql8``) and ``install_mysql.sh 9``
  (``/opt/mysql9``) do (with the newer C/C++ runtime it needs, run by that root's own
  dynamic loader; nothing is installed into the system).

Each server starts once per test process, on first use, in a temporary data directory of
its own on a free loopback port (``--initialize-insecure``: root with no password), and
is stopped at the end of the session. Without a binary the tests that need it skip, also
in CI, unless ``CONVEYOR_REQUIRE_MYSQLN=1`` makes a missing server a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from tests.contract.private_root import find_server

SEARCH = "/opt/mysql*/usr/sbin/mysqld"


@dataclass(frozen=True)
class Release:
    """One MySQL release line the tests run a private server of."""

    id: str  # the contract-suite id, e.g. "mysql8"
    title: str  # e.g. "MySQL 8"
    accepts: Callable[[tuple[int, int]], bool]  # (major, minor) from mysqld --version
    install: str  # how to unpack one

    @property
    def url_env(self) -> str:
        return f"CONVEYOR_TEST_{self.id.upper()}_URL"

    @property
    def mysqld_env(self) -> str:
        return f"CONVEYOR_{self.id.upper().replace('MYSQL', 'MYSQLD')}"

    @property
    def require_env(self) -> str:
        return f"CONVEYOR_REQUIRE_{self.id.upper()}"


MYSQL8 = Release("mysql8", "MySQL 8", lambda v: v[0] == 8, "install_mysql.sh 8.0")
MYSQL9 = Release("mysql9", "MySQL 9+", lambda v: v[0] >= 9, "install_mysql.sh 9")
#: the private MySQL servers, by contract-suite id
RELEASES = {release.id: release for release in (MYSQL8, MYSQL9)}

_VERSION = re.compile(r"(\d+)\.(\d+)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_mysqld(release_id: str) -> list[str] | None:
    """The command that runs a MySQL (not MariaDB) ``mysqld`` of that release, or ``None``."""
    release = RELEASES[release_id]

    def of_release(version: str) -> bool:
        if "mariadb" in version.lower():
            return False
        found = _VERSION.match(version.split(" Ver ", 1)[-1].strip())
        return found is not None and release.accepts((int(found[1]), int(found[2])))

    return find_server(release.mysqld_env, SEARCH, of_release)


class MySQLServer:
    """One throwaway ``mysqld``: ``install()``, ``start()``, ``stop()``, ``remove()``."""

    def __init__(
        self, command: list[str], directory: Path | None = None, name: str = "mysql"
    ) -> None:
        self.command = command
        self.dir = directory or Path(tempfile.mkdtemp(prefix=f"conveyor-{name}-"))
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


def skip_or_fail(release_id: str, reason: str) -> NoReturn:
    require = RELEASES[release_id].require_env
    if os.environ.get(require) == "1":
        pytest.fail(f"{reason} ({require}=1)", pytrace=False)
    pytest.skip(reason)


def no_server(release_id: str) -> NoReturn:
    """Skip (or fail) the test: there is no ``mysqld`` of that release to start."""
    release = RELEASES[release_id]
    skip_or_fail(
        release_id,
        f"no {release.title} mysqld ({release.mysqld_env} or {SEARCH}) to start; "
        f"tests/contract/{release.install} unpacks one",
    )


_shared: dict[str, MySQLServer] = {}


def shared_url(release_id: str) -> str:
    """The URL of this process's private server of that release, started on first use.

    Skips the test when no such binary is here (see the module docstring).
    """
    release = RELEASES[release_id]
    if os.environ.get(release.url_env):
        return os.environ[release.url_env]
    if release_id not in _shared:
        command = find_mysqld(release_id)
        if command is None:
            no_server(release_id)
        server = MySQLServer(command, name=release_id)
        try:
            server.install()
            server.start()
        except BaseException:
            server.remove()
            raise
        _shared[release_id] = server
    return _shared[release_id].url


def stop_shared() -> None:
    """Stop and remove this process's private servers, if any was started."""
    while _shared:
        _shared.popitem()[1].remove()
