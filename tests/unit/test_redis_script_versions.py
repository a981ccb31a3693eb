"""The Redis driver's Lua scripts run on Redis 6.2 (the oldest the driver supports).

The tests run on Redis 7.0 and Valkey, which would not notice a script starting to use a
command or an option that 6.2 lacks; these checks do. Every command a script calls must
be one listed here with the Redis version that added it (a new command means adding it
to :data:`SINCE`, with its version, on purpose).
"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from conveyor.drivers._redis.scripts import COMPOSITES, NAMES, scripts

SUPPORTED = (6, 2)

#: Commands the scripts may call, with the Redis version that added them.
SINCE: dict[str, tuple[int, int]] = {
    "DEL": (1, 0), "EXISTS": (1, 0), "GET": (1, 0), "SET": (1, 0), "INCRBY": (1, 0),
    "TYPE": (1, 0), "RENAME": (1, 0),
    "SADD": (1, 0), "SREM": (1, 0), "SMEMBERS": (1, 0), "SCARD": (1, 0),
    "HSET": (2, 0), "HGET": (2, 0), "HMGET": (2, 0), "HDEL": (2, 0), "HGETALL": (2, 0),
    "HINCRBY": (2, 0), "HEXISTS": (2, 0), "HLEN": (2, 0),
    "ZADD": (1, 2), "ZREM": (1, 2), "ZCARD": (1, 2), "ZSCORE": (1, 2), "ZRANGE": (1, 2),
    "ZRANGEBYSCORE": (1, 0), "ZREMRANGEBYSCORE": (1, 2), "ZCOUNT": (2, 0),
    "ZPOPMIN": (5, 0), "ZMSCORE": (6, 2),
    "PEXPIREAT": (2, 6), "PEXPIRE": (2, 6), "PUBLISH": (2, 0), "TIME": (2, 6),
    # newer than 6.2, so never allowed while 6.2 is supported
    "LMPOP": (7, 0), "ZMPOP": (7, 0), "BLMPOP": (7, 0), "BZMPOP": (7, 0),
    "ZINTERCARD": (7, 0), "SINTERCARD": (7, 0), "EXPIRETIME": (7, 0),
    "PEXPIRETIME": (7, 0), "LCS": (7, 0), "FUNCTION": (7, 0), "FCALL": (7, 0),
    "FCALL_RO": (7, 0), "EVAL_RO": (7, 0), "EVALSHA_RO": (7, 0), "SPUBLISH": (7, 0),
    "HEXPIRE": (7, 4), "HPEXPIRE": (7, 4), "HGETDEL": (8, 0),
    "HGETEX": (8, 0), "HSETEX": (8, 0),
}  # fmt: skip

#: Options newer than 6.2 of commands that are older.
NEW_OPTIONS: dict[str, tuple[frozenset[str], tuple[int, int]]] = {
    "EXPIRE": (frozenset({"NX", "XX", "GT", "LT"}), (7, 0)),
    "PEXPIRE": (frozenset({"NX", "XX", "GT", "LT"}), (7, 0)),
    "EXPIREAT": (frozenset({"NX", "XX", "GT", "LT"}), (7, 0)),
    "PEXPIREAT": (frozenset({"NX", "XX", "GT", "LT"}), (7, 0)),
    "BITCOUNT": (frozenset({"BIT", "BYTE"}), (7, 0)),
    "BITPOS": (frozenset({"BIT", "BYTE"}), (7, 0)),
    "SHUTDOWN": (frozenset({"NOW", "FORCE", "ABORT"}), (7, 0)),
}

#: Lua-side features newer than 6.2 (script flags, the version API, functions).
NEW_LUA = {
    "#!lua": (7, 0),
    "redis.REDIS_VERSION": (7, 0),
    "redis.setresp(3)": (6, 0),
    "redis.register_function": (7, 0),
}

_CALL = re.compile(r"redis\.p?call\(\s*(?P<quote>['\"])(?P<name>[A-Za-z_]+)(?P=quote)")
_ANY_CALL = re.compile(r"redis\.p?call\(")
_LITERAL = re.compile(r"'([^']*)'|\"([^\"]*)\"")


def _sources() -> dict[str, str]:
    files = resources.files("conveyor.drivers").joinpath("_lua")
    return {name: files.joinpath(f"{name}.lua").read_text("utf-8") for name in ("lib", *NAMES)}


def _calls(source: str) -> list[tuple[str, list[str]]]:
    """Each ``redis.call`` as (command, the string literals among its arguments)."""
    found = []
    for match in _CALL.finditer(source):
        depth, end = 1, match.end()
        while depth and end < len(source):
            depth += {"(": 1, ")": -1}.get(source[end], 0)
            end += 1
        arguments = source[match.end() : end - 1]
        literals = [a or b for a, b in _LITERAL.findall(arguments)]
        found.append((match["name"].upper(), literals))
    return found


@pytest.mark.parametrize("name", ["lib", *NAMES])
def test_scripts_call_only_commands_redis_6_2_has(name: str) -> None:
    source = _sources()[name]
    calls = _calls(source)
    assert len(calls) == len(_ANY_CALL.findall(source)), (
        f"{name}.lua: every redis.call names its command as a string literal, so it can "
        "be checked here"
    )
    for command, literals in calls:
        assert command in SINCE, f"{name}.lua calls {command}: add it to SINCE, with its version"
        assert SINCE[command] <= SUPPORTED, (
            f"{name}.lua calls {command}, new in Redis {SINCE[command]}; "
            f"the driver supports Redis {SUPPORTED}"
        )
        options, since = NEW_OPTIONS.get(command, (frozenset(), (0, 0)))
        used = options & {literal.upper() for literal in literals}
        assert not used or since <= SUPPORTED, (
            f"{name}.lua: {command} {sorted(used)} is new in Redis {since}"
        )


@pytest.mark.parametrize("name", ["lib", *NAMES])
def test_scripts_use_no_lua_feature_newer_than_redis_6_2(name: str) -> None:
    source = _sources()[name]
    for feature, since in NEW_LUA.items():
        if since > SUPPORTED:
            assert feature not in source, f"{name}.lua uses {feature}, new in {since}"


def test_the_check_sees_what_it_should() -> None:
    """The parser finds commands and options, across lines too."""
    lua = "redis.call('PEXPIREAT', k,\n  t, 'NX')\nlocal x = redis.pcall(\"lmpop\", 1, k, 'LEFT')"
    assert _calls(lua) == [("PEXPIREAT", ["NX"]), ("LMPOP", ["LEFT"])]
    # every script loaded is one of the files checked, or composed only of them
    assert set(scripts()) == set(NAMES) | set(COMPOSITES)
    assert {part for parts in COMPOSITES.values() for part in parts} <= set(NAMES)
