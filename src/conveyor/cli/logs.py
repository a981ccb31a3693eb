"""Logging for CLI processes: text (Rich on a terminal, plain lines otherwise) or JSON lines.

Every record of the worker starts with a stable event name (``job.started``,
``job.succeeded``, ``worker.stopping``, ``supervisor.child_started``...). The JSON
format lifts it into an ``event`` field, and ``key=value`` pairs of the message
into fields of their own, so log pipelines need no regular expressions::

    {"ts": "...", "level": "info", "event": "job.succeeded", "msg": "...", "id": "..."}
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import sys
from typing import Any, Literal

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]

_EVENT = re.compile(r"^([a-z_]+(?:\.[a-z_]+)+)\b")
_PAIR = re.compile(r"\b([a-z_]+)=(\S+)")
_RESERVED = frozenset({"ts", "level", "event", "msg", "logger", "exc"})


def event_of(message: str) -> str | None:
    match = _EVENT.match(message)
    return match.group(1) if match else None


def _scalar(text: str) -> str | int | float:
    """``"42"`` -> 42, ``"1.5"`` -> 1.5; anything else stays text (``nan`` too: not JSON)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``event``, ``msg``, ``logger``, fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        data: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or event_of(message),
            "msg": message,
            "logger": record.name,
        }
        for key, value in _PAIR.findall(message):
            if key not in _RESERVED:
                data.setdefault(key, _scalar(value.rstrip(":,;")))
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def configure(level: LogLevel, fmt: LogFormat) -> None:
    """Send Conveyor's (and the user's) log records to stderr in ``fmt`` at ``level``."""
    handler: logging.Handler
    if fmt == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        from rich.logging import RichHandler

        from conveyor.cli.output import err

        handler = RichHandler(console=err, show_path=False, rich_tracebacks=True, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    # the worker's per-job lines are INFO: --log-level warning silences them
    root.setLevel(level.upper())
    logging.getLogger("conveyor").setLevel(level.upper())
    for chatty in ("aiosqlite", "asyncio"):  # one DEBUG record per query / per poll
        logging.getLogger(chatty).setLevel(max(logging.INFO, root.level))
