"""A private Valkey server, so ``redis://`` is tested on Valkey as well as on the shared
Redis on 6379.

Debian 12 has no Valkey; a server is found by:

* ``CONVEYOR_TEST_VALKEY_URL``: a Valkey server that is already running (used as is);
* ``CONVEYOR_VALKEY_SERVER``: the path of a ``valkey-server`` to start;
* otherwise ``/opt/valkey*/usr/bin/valkey-server``: Valkey unpacked into a private root,
  as ``tests/contract/install_valkey.sh`` does (Debian unstable's ``valkey-server`` with
  the newer C runtime it needs, run by that root's own dynamic loader; nothing is
  installed into the system);
* or a ``valkey-server`` on the ``PATH``.

The server starts once per test process, on first use, in a temporary directory on a free
loopback port, with no persistence, and is stopped at the end of the session. Without a
binary the tests that need it skip, also in CI, unless ``CONVEYOR_REQUIRE_VALKEY=1``
makes a missing server a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest

from tests.contract.redis_server import RedisServer

URL_ENV = "CONVEYOR_TEST_VALKEY_URL"
BINARY_ENV = "CONVEYOR_VALKEY_SERVER"
REQUIRE_ENV = "CONVEYOR_REQUIRE_VALKEY"
SEARCH = "/opt/valkey*/usr/bin/valkey-server"
_LIBS = "usr/lib/x86_64-linux-gnu"


def find_valkey() -> list[str] | None:
    """The command that runs a ``valkey-server``, or ``None``."""
    candidates = [os.environ[BINARY_ENV]] if os.environ.get(BINARY_ENV) else []
    candidates += sorted(glob.glob(SEARCH), reverse=True)
    if on_path := shutil.which("valkey-server"):
        candidates.append(on_path)
    for binary in candidates:
        command = _command(Path(binary))
        try:
            version = subprocess.run(
                [*command, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if version.startswith("Valkey server"):
            return command
    return None


def _command(binary: Path) -> list[str]:
    """``binary``, run by its private root's loader when it was unpacked with one.

    The path is kept as given: ``valkey-server`` is a link to ``valkey-check-rdb``, and
    the program picks its role by the name it was started as.
    """
    root = binary.resolve().parents[2]  # <root>/usr/bin/valkey-check-rdb
    loader = root / _LIBS / "ld-linux-x86-64.so.2"
    if not loader.exists():
        return [str(binary)]
    libs = f"{root / _LIBS}:/{_LIBS}:/lib/x86_64-linux-gnu"
    return [str(loader), "--library-path", libs, str(binary)]


def skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


_shared: tuple[RedisServer, Path] | None = None


def shared_url() -> str:
    """The URL of this process's private Valkey server, started on first use.

    Skips the test when no ``valkey-server`` is here (see the module docstring).
    """
    global _shared
    if os.environ.get(URL_ENV):
        return os.environ[URL_ENV]
    if _shared is None:
        command = find_valkey()
        if command is None:
            skip_or_fail(f"no valkey-server ({BINARY_ENV}, {SEARCH} or the PATH) to start")
        directory = Path(tempfile.mkdtemp(prefix="conveyor-valkey-"))
        try:
            server = RedisServer(directory, command=command)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        _shared = (server, directory)
    return _shared[0].url


def stop_shared() -> None:
    """Stop and remove this process's private server, if it was started."""
    global _shared
    if _shared is not None:
        server, directory = _shared
        _shared = None
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
