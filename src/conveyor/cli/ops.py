"""Operations: ``migrate``, ``check``, ``stats [--watch]`` and ``env``."""

from __future__ import annotations

import asyncio
import signal
import typing
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo
from rich import box
from rich.table import Table

import conveyor
from conveyor.app import Conveyor
from conveyor.cli.loading import open_app
from conveyor.cli.options import AppOption, UrlOption, from_command_line
from conveyor.cli.output import fail, mask_url, out
from conveyor.core.job import JobStatus
from conveyor.drivers.base import QueueStats, SupportsMigrations
from conveyor.settings import Settings

_COLUMNS = (
    (JobStatus.SCHEDULED, ""),
    (JobStatus.QUEUED, "cyan"),
    (JobStatus.ACTIVE, "bold cyan"),
    (JobStatus.RETRYING, "yellow"),
    (JobStatus.SUCCEEDED, "green"),
    (JobStatus.DEAD, "red"),
    (JobStatus.CANCELLED, "dim"),
)


def migrate(ctx: typer.Context, url: UrlOption = None, app: AppOption = None) -> None:
    """Create or upgrade the broker's schema (idempotent)."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def go() -> None:
        async with instance:
            driver = instance.driver
            where = mask_url(instance.url)
            if not isinstance(driver, SupportsMigrations):
                out.print(f"nothing to migrate: {where} has no schema")
                return
            before = await driver.schema_version()
            version = await driver.migrate()
            if before == version:
                out.print(f"{where}: schema already at version {version}")
            else:
                out.print(f"{where}: schema migrated to version {version}")

    asyncio.run(go())


def check(ctx: typer.Context, url: UrlOption = None, app: AppOption = None) -> None:
    """Health probe: the broker answers and its schema is current. Exit 0 when healthy."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    missing = instance.driver.missing()
    if missing is not None:  # connecting would create it: a health probe must not
        fail(f"{missing}: check creates nothing; conveyor migrate creates it")

    async def go() -> str:
        # connecting checks the schema: a driver refuses a database it can't use (SchemaError)
        async with instance:
            driver = instance.driver
            await driver.ping()
            if isinstance(driver, SupportsMigrations):
                version = await driver.schema_version()
                if version is None:
                    fail(f"{mask_url(instance.url)} has no schema: run conveyor migrate")
                return f"schema v{version}"
            return "no schema needed"

    detail = asyncio.run(go())
    out.print(f"ok: {mask_url(instance.url)} reachable, {detail}")


def _stats_table(app: Conveyor, stats: list[QueueStats]) -> Table:
    # no vertical rules: the eight columns fit in 80 characters
    table = Table(
        title=f"conveyor · {mask_url(app.url)}",
        title_justify="left",
        box=box.SIMPLE,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("queue", style="bold")
    for status, style in _COLUMNS:
        table.add_column(status.value, justify="right", style=style, min_width=len(status.value))
    totals = dict.fromkeys(JobStatus, 0)
    for row in sorted(stats, key=lambda s: s.queue):
        table.add_row(row.queue, *(str(row[status]) for status, _ in _COLUMNS))
        for status in JobStatus:
            totals[status] += row[status]
    if len(stats) != 1:
        table.add_section()
        table.add_row("total", *(str(totals[status]) for status, _ in _COLUMNS), style="bold")
    return table


def stats(
    ctx: typer.Context,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C.")] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="Seconds between refreshes (--watch).")
    ] = 1.0,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Jobs per queue and state, as a table."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def once() -> None:
        async with instance:
            out.print(_stats_table(instance, await instance.stats()))

    async def live() -> None:
        from rich.live import Live

        # Ctrl-C / SIGTERM end the loop between refreshes and close the app cleanly,
        # instead of a KeyboardInterrupt landing inside a driver call
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        async def pause() -> bool:
            try:
                await asyncio.wait_for(stop.wait(), interval)
            except TimeoutError:
                return True
            return False

        async with instance:
            if not out.is_terminal:  # piped: Live would show nothing until the end
                while not stop.is_set():
                    out.print(_stats_table(instance, await instance.stats()))
                    if not await pause():
                        return
                return
            with Live(_stats_table(instance, await instance.stats()), console=out) as view:
                while await pause():
                    view.update(_stats_table(instance, await instance.stats()))

    if not watch:
        asyncio.run(once())
        return
    try:
        asyncio.run(live())
    except KeyboardInterrupt:
        pass


# -- env ------------------------------------------------------------------------------


def _describe(name: str, info: FieldInfo) -> str:
    text = info.description or name.replace("_", " ").capitalize()
    choices = typing.get_args(info.annotation)
    if choices and all(isinstance(c, str) for c in choices):
        text += f" (one of: {', '.join(choices)})"
    return text


def _default(name: str, info: FieldInfo) -> str:
    if info.default_factory is not None:
        return str(Settings.model_fields[name].get_default(call_default_factory=True))
    value: Any = info.default
    return "" if value is None else str(value)


def _cli_only() -> Iterator[tuple[str, str, str]]:
    """``CONVEYOR_*`` variables that only the CLI reads (flags without a settings field)."""
    from conveyor.cli.main import cli_envvars

    fields = {f"CONVEYOR_{name.upper()}" for name in Settings.model_fields}
    seen: set[str] = set()
    for var, text, default in cli_envvars():
        if var not in fields and var not in seen:
            seen.add(var)
            yield var, text, default


def env() -> None:
    """Print a commented .env template of every CONVEYOR_* setting and its default."""
    lines = [
        f"# Conveyor {conveyor.__version__} settings: a .env template from `conveyor env`.",
        "# Values shown are the defaults; uncomment a line to change it.",
        "# Environment variables win over this file; command-line flags win over both.",
    ]
    for name, info in Settings.model_fields.items():
        lines += ["", f"# {_describe(name, info)}"]
        if info.default_factory is not None:
            lines.append("# default: computed on this machine")
        lines.append(f"# CONVEYOR_{name.upper()}={_default(name, info)}")
    extra = list(_cli_only())
    if extra:
        lines += ["", "# -- read by the conveyor command only " + "-" * 40]
        for var, text, default in extra:
            lines += ["", f"# {text}", f"# {var}={default}"]
    out.print("\n".join(lines), markup=False, soft_wrap=True)
