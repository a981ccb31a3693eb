"""Rendering for the CLI: the consoles, one-line errors, and small formatting helpers.

Every failure the user can fix (a bad URL, a missing module, an unreachable
broker, any :class:`~conveyor.exceptions.ConveyorError`) ends as one red line on
stderr and an exit code: 2 for usage and configuration, 1 for runtime trouble.
``--debug`` (or ``CONVEYOR_DEBUG=1``) shows the traceback as well.
"""

from __future__ import annotations

import datetime as dt
import sys
import traceback
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

from rich.console import Console
from rich.text import Text

from conveyor.exceptions import ArgumentError, ConfigurationError, ConveyorError

#: exit codes
OK = 0
RUNTIME = 1
USAGE = 2

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


class CliError(Exception):
    """A failure to report as one line, with the exit code to leave with."""

    def __init__(self, message: str, code: int = RUNTIME) -> None:
        super().__init__(message)
        self.code = code


class _State:
    debug = False


state = _State()


def fail(message: str, code: int = RUNTIME) -> NoReturn:
    raise CliError(message, code)


def warn(message: str) -> None:
    err.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def error_line(message: str) -> None:
    # soft_wrap: one line whatever the terminal width, so scripts can grep it
    err.print(Text(f"error: {message}", style="bold red"), soft_wrap=True)


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, ConfigurationError | ArgumentError):
        return USAGE
    return RUNTIME


def describe(exc: BaseException) -> str:
    """The one line a user sees for ``exc``."""
    if isinstance(exc, CliError | ConveyorError):
        message = str(exc) or type(exc).__name__
        cause = exc.__cause__
        # a wrapped driver error says *why* (e.g. "unable to open database file")
        if isinstance(exc, ConveyorError) and cause is not None and str(cause) not in message:
            message = f"{message}: {cause}"
        return message
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def report(exc: BaseException) -> int:
    """Print ``exc`` as one line (plus the traceback with ``--debug``); return the exit code."""
    if state.debug:
        err.print(Text("".join(traceback.format_exception(exc)).rstrip(), style="dim"))
    message = describe(exc)
    if not isinstance(exc, CliError | ConveyorError) and not state.debug:
        message += " (run with --debug for the traceback)"
    error_line(message)
    return exit_code_for(exc)


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{user}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def when(epoch: float | None) -> str:
    """An epoch timestamp as local ISO time, to the millisecond."""
    if epoch is None:
        return "-"
    stamp = dt.datetime.fromtimestamp(epoch).astimezone()
    return stamp.isoformat(sep=" ", timespec="milliseconds")


def shorten(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def is_interactive() -> bool:
    return sys.stdin.isatty()
