"""The ``conveyor`` command: a Typer app, and the one place errors become exit codes."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Annotated, Any

import typer

import conveyor
from conveyor.cli import dead, jobs, ops
from conveyor.cli import worker as worker_cmd
from conveyor.cli.output import report, state

app = typer.Typer(
    name="conveyor",
    help="Conveyor: an async-first, typed background task queue.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"conveyor {conveyor.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="CONVEYOR_DEBUG", help="Show tracebacks instead of one-line errors."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Conveyor: an async-first, typed background task queue.

    Every option has a CONVEYOR_* environment variable (see `conveyor env`).
    """
    state.debug = debug


app.command("worker")(worker_cmd.worker)
app.command("enqueue")(jobs.enqueue)
app.add_typer(jobs.jobs_app)
app.add_typer(dead.dead_app)
app.command("stats")(ops.stats)
app.command("migrate")(ops.migrate)
app.command("check")(ops.check)
app.command("env")(ops.env)


@app.command("demo")
def demo(
    jobs_count: Annotated[
        int, typer.Option("--jobs", min=1, help="How many I/O jobs to dispatch.")
    ] = 2000,
    path: Annotated[
        str, typer.Option("--db", help="SQLite file to create afresh.")
    ] = "conveyor-demo.db",
) -> None:
    """The quick start: thousands of jobs on a fresh SQLite file, then a summary."""
    from conveyor.cli.demo import run_demo

    run_demo(path, jobs_count)


def cli_envvars() -> Iterator[tuple[str, str, str]]:
    """Every ``(CONVEYOR_*, help, default)`` declared by an option of any command."""
    stack: list[Any] = [typer.main.get_command(app)]
    while stack:
        command = stack.pop(0)
        for param in getattr(command, "params", ()):
            envvar = getattr(param, "envvar", None)
            names = [envvar] if isinstance(envvar, str) else list(envvar or ())
            default = getattr(param, "default", None)
            shown = "" if default is None else str(default).lower()
            for name in names:
                yield name, getattr(param, "help", None) or name, shown
        stack.extend(getattr(command, "commands", {}).values())


def run(argv: Sequence[str] | None = None) -> None:
    """Run the CLI and exit: usage errors are Typer's; everything else is one line here."""
    command = typer.main.get_command(app)
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name="conveyor")
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        sys.exit(report(exc))
    sys.exit(0)
