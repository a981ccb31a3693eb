"""Per-test isolation on the shared Redis: a key prefix of the test's own
(``?prefix=t...``), whose keys are deleted after the test.

Nothing else on the server is touched: no FLUSHDB, no CONFIG SET. The prefix's keys
are found with SCAN MATCH on the prefix's hash tag, which only tests do.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDIS_URL = "redis://127.0.0.1:6379/0"


def with_prefix(url: str, prefix: str) -> str:
    """``url`` with Conveyor's key prefix set to ``prefix``."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "prefix"] + [("prefix", prefix)]
    return urlunsplit(parts._replace(query=urlencode(query)))


async def drop_prefix(url: str, prefix: str) -> int:
    """Delete every key of ``prefix`` (``{prefix}:...``); return how many there were."""
    import redis.asyncio

    server = urlunsplit(urlsplit(url)._replace(query=""))
    client = redis.asyncio.Redis.from_url(server)
    deleted = 0
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{{{prefix}}}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += await client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += await client.unlink(*batch)
    finally:
        await client.aclose()
    return deleted


@asynccontextmanager
async def private_prefix(url: str) -> AsyncIterator[str]:
    """A key prefix of the test's own, dropped with all its keys afterwards."""
    prefix = f"t-{secrets.token_hex(5)}"
    try:
        yield with_prefix(url, prefix)
    finally:
        await drop_prefix(url, prefix)
