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

import os
import shutil
import tempfile
from pathlib import Path
from typing import NoReturn

import pytest

from tests.contract.private_root import find_server
from tests.contract.redis_server import RedisServer

URL_ENV = "CONVEYOR_TEST_VALKEY_URL"
BINARY_ENV = "CONVEYOR_VALKEY_SERVER"
REQUIRE_ENV = "CONVEYOR_REQUIRE_VALKEY"
SEARCH = "/opt/valkey*/usr/bin/valkey-server"


def find_valkey() -> list[str] | None:
    """The command that runs a ``valkey-server``, or ``None``."""
    on_path = shutil.which("valkey-server")
    extra = [on_path] if on_path else []
    return find_server(BINARY_ENV, SEARCH, lambda v: v.startswith("Valkey server"), extra)


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
