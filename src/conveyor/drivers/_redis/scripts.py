"""The Lua scripts of the Redis driver, loaded from ``drivers/_lua/*.lua``.

Each script is ``lib.lua`` followed by its own file. Scripts are called with EVALSHA; a
server that does not know one (a restart, ``SCRIPT FLUSH``) answers NOSCRIPT, and the
call is made again with EVAL, which also caches the script for the next time.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from importlib import resources

NAMES = (
    "enqueue",
    "reserve",
    "renew",
    "complete",
    "cancel",
    "progress",
    "jobs",
    "probe",
    "stats",
    "list",
    "retry_dead",
    "purge",
)


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: bytes
    sha: str


def _read(name: str) -> str:
    return resources.files("conveyor.drivers").joinpath("_lua", f"{name}.lua").read_text("utf-8")


@functools.cache
def scripts() -> dict[str, Script]:
    """Every script by name, with the SHA1 the server will know it by."""
    lib = _read("lib")
    out: dict[str, Script] = {}
    for name in NAMES:
        source = f"{lib}\n-- {name}.lua\n{_read(name)}".encode()
        out[name] = Script(name, source, hashlib.sha1(source).hexdigest())
    return out
