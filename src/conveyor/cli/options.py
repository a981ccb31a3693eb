"""Options shared by several commands. Each one has its ``CONVEYOR_*`` twin, shown in ``--help``.

Options backed by :class:`~conveyor.settings.Settings` default to ``None`` here and
fall back to the settings (environment, then ``.env``, then the default shown).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from conveyor.settings import Settings


def setting_default(name: str) -> str:
    """The default of a settings field, as ``--help`` shows it."""
    value: Any = Settings.model_fields[name].default
    return "-" if value is None else str(value)


def from_command_line(ctx: typer.Context, name: str) -> bool:
    """Whether option ``name`` was typed on the command line (not taken from the environment)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="CONVEYOR_URL",
        help="Broker URL; the scheme picks the driver.",
        show_default=setting_default("url"),
    ),
]
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        envvar="CONVEYOR_APP",
        help="Your app as module:attribute (default: the default app, from settings).",
        show_default=False,
    ),
]
ModulesOption = Annotated[
    list[str] | None,
    typer.Option(
        "--module",
        "-m",
        help="Module to import first, registering its tasks (repeatable).",
        show_default=False,
    ),
]
QueueFilterOption = Annotated[
    str | None,
    typer.Option("--queue", "-q", help="Only this queue.", show_default=False),
]
