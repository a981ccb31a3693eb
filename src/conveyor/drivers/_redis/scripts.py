"""The Lua scripts of the Redis driver, loaded from ``drivers/_lua/*.lua``.

Each script is ``lib.lua`` followed by its own file. A composite script runs several of
them in one call, one after another: each file becomes a function of its own share of
the arguments (``ARGV[2]`` says how many the first part takes) and the reply is the list
of their replies. Scripts are called with EVALSHA; a
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

#: composite scripts: name -> the scripts it runs, in order (two parts)
COMPOSITES = {"complete_reserve": ("complete", "reserve")}

_GLUE = """
local function share(first, last)
  local a = {{ ARGV[1] }}
  for i = first, last do
    a[#a + 1] = ARGV[i]
  end
  return a
end
local split = 2 + tonumber(ARGV[2])
return {{ {first}(share(3, split)), {second}(share(split + 1, #ARGV)) }}
"""


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
    for name, (first, second) in COMPOSITES.items():
        parts = [lib]
        for part in (first, second):  # ARGV inside each function is its parameter
            parts.append(f"-- {part}.lua\nlocal function run_{part}(ARGV)\n{_read(part)}\nend")
        parts.append(_GLUE.format(first=f"run_{first}", second=f"run_{second}"))
        source = "\n".join(parts).encode()
        out[name] = Script(name, source, hashlib.sha1(source).hexdigest())
    return out
