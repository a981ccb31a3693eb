"""``conveyor worker``: import the task modules, show a banner, run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

import conveyor
from conveyor.app import Conveyor
from conveyor.cli.loading import load_settings, open_app
from conveyor.cli.logs import LogFormat, LogLevel, configure
from conveyor.cli.options import AppOption, UrlOption, from_command_line, setting_default
from conveyor.cli.output import USAGE, err, fail, mask_url, state
from conveyor.core.registry import registry
from conveyor.worker import WorkerConfig
from conveyor.worker.lifecycle import ParentWatch, ShutdownSignals
from conveyor.worker.supervisor import EXIT_RECYCLED, SUPERVISOR_PID_ENV, Supervisor

log = logging.getLogger("conveyor.worker")


def worker(
    ctx: typer.Context,
    modules: Annotated[
        list[str] | None,
        typer.Argument(
            help="Modules that define your tasks (importing them registers the tasks).",
            show_default=False,
            metavar="MODULE",
        ),
    ] = None,
    app: AppOption = None,
    url: UrlOption = None,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues",
            "-Q",
            envvar="CONVEYOR_QUEUES",
            help="Queues to take jobs from, in priority order (comma-separated).",
            show_default=setting_default("default_queue"),
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            "-c",
            min=1,
            envvar="CONVEYOR_CONCURRENCY",
            help="Jobs this process runs at once.",
            show_default=setting_default("concurrency"),
        ),
    ] = None,
    prefetch: Annotated[
        int | None,
        typer.Option(
            "--prefetch",
            min=0,
            envvar="CONVEYOR_PREFETCH",
            help="Jobs reserved ahead of free slots.",
            show_default="concurrency",
        ),
    ] = None,
    burst: Annotated[
        bool,
        typer.Option(
            "--burst", envvar="CONVEYOR_BURST", help="Process the jobs that are due, then exit."
        ),
    ] = False,
    processes: Annotated[
        int,
        typer.Option(
            "--processes",
            "-p",
            min=0,
            envvar="CONVEYOR_PROCESSES",
            help="Run N worker processes under a supervisor that restarts them (0: this one).",
        ),
    ] = 0,
    max_jobs_per_child: Annotated[
        int | None,
        typer.Option(
            "--max-jobs-per-child",
            min=1,
            envvar="CONVEYOR_MAX_JOBS_PER_CHILD",
            help="Recycle a worker process after N jobs (without a supervisor: exit).",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        LogLevel | None,
        typer.Option(
            "--log-level",
            envvar="CONVEYOR_LOG_LEVEL",
            help="warning silences the per-job lines.",
            show_default=setting_default("log_level"),
        ),
    ] = None,
    log_format: Annotated[
        LogFormat | None,
        typer.Option(
            "--log-format",
            envvar="CONVEYOR_LOG_FORMAT",
            help="text, or json: one object per line.",
            show_default=setting_default("log_format"),
        ),
    ] = None,
    shutdown_grace: Annotated[
        float | None,
        typer.Option(
            "--shutdown-grace",
            min=0,
            envvar="CONVEYOR_SHUTDOWN_GRACE",
            help="Seconds in-flight jobs get to finish after SIGTERM.",
            show_default=setting_default("shutdown_grace"),
        ),
    ] = None,
    lease_seconds: Annotated[
        float | None,
        typer.Option(
            "--lease-seconds",
            min=0.1,
            envvar="CONVEYOR_LEASE_SECONDS",
            help="Lease on a reserved job, renewed while it runs.",
            show_default=setting_default("lease_seconds"),
        ),
    ] = None,
) -> None:
    """Run a worker: conveyor worker myapp.tasks --queues high,default."""
    settings = load_settings()
    level: LogLevel = log_level or settings.log_level
    fmt: LogFormat = log_format or settings.log_format
    configure(level, fmt)
    names = list(modules or [])
    if not names and app is None:
        fail("name the modules that define your tasks, e.g. conveyor worker myapp.tasks", USAGE)
    instance = open_app(
        url, app, names, url_from_command_line=from_command_line(ctx, "url"), settings=settings
    )
    if app is not None:
        names.append(app.partition(":")[0])
    overrides: dict[str, Any] = {
        "queues": queues,
        "concurrency": concurrency,
        "prefetch": prefetch,
        "shutdown_grace": shutdown_grace,
        "lease_seconds": lease_seconds,
        "burst": burst,
        "max_jobs": max_jobs_per_child,
        "modules": tuple(dict.fromkeys(names)),
    }
    config = instance.worker_config(**overrides)
    if not config.queues:
        fail(f"--queues {queues!r} names no queue", USAGE)
    if processes:
        command = _child_command(names, app, config, level, fmt)
        env = dict(os.environ)
        if app is None:
            env["CONVEYOR_URL"] = instance.url  # not on the command line: `ps` shows that
        code = _run(_supervise(instance, config, command, env, processes, fmt == "text"))
    else:
        code = _run(_serve(instance, overrides, config, fmt == "text"), fast=True)
    raise typer.Exit(code)


def _run(coro: Coroutine[Any, Any, int], *, fast: bool = False) -> int:
    factory = None
    if fast:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def _child_command(
    modules: list[str], app: str | None, config: WorkerConfig, level: str, fmt: str
) -> list[str]:
    cmd = [sys.executable, "-m", "conveyor"]
    if state.debug:
        cmd.append("--debug")
    cmd += ["worker", *dict.fromkeys(m for m in modules if app is None or m != app.split(":")[0])]
    if app is not None:
        cmd += ["--app", app]
    cmd += [
        "--processes=0",
        f"--queues={','.join(config.queues)}",
        f"--concurrency={config.concurrency}",
        f"--shutdown-grace={config.shutdown_grace}",
        f"--lease-seconds={config.lease_seconds}",
        f"--log-level={level}",
        f"--log-format={fmt}",
    ]
    if config.prefetch is not None:
        cmd.append(f"--prefetch={config.prefetch}")
    if config.burst:
        cmd.append("--burst")
    if config.max_jobs is not None:
        cmd.append(f"--max-jobs-per-child={config.max_jobs}")
    return cmd


def banner(app: Conveyor, config: WorkerConfig, processes: int = 0) -> None:
    """The worker's identity card, on stderr (stdout stays for the user's tasks)."""
    names = registry.names()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("broker", mask_url(app.url))
    grid.add_row("queues", ", ".join(config.queues))
    prefetch = config.concurrency if config.prefetch is None else config.prefetch
    grid.add_row("concurrency", f"{config.concurrency} (prefetch {prefetch})")
    if processes:
        grid.add_row("processes", str(processes))
    if config.max_jobs is not None:
        grid.add_row("max jobs", f"{config.max_jobs} per process")
    grid.add_row("lease", f"{config.lease_seconds:g}s, shutdown grace {config.shutdown_grace:g}s")
    if config.burst:
        grid.add_row("mode", "burst: exit when nothing is due")
    grid.add_row(f"tasks ({len(names)})", "\n".join(names) or "[yellow]none registered[/]")
    who = f"supervisor pid {os.getpid()}" if processes else f"worker {config.worker_id}"
    title = f"[bold]conveyor {conveyor.__version__}[/] · {who}"
    err.print(Panel(grid, title=title, title_align="left", expand=False))


async def _serve(
    app: Conveyor, overrides: dict[str, Any], config: WorkerConfig, show_banner: bool
) -> int:
    """One worker in this process. Returns the exit code."""
    supervisor = os.environ.get(SUPERVISOR_PID_ENV)
    parent = int(supervisor) if supervisor and supervisor.isdigit() else None
    await app.connect()  # an unreachable broker fails here, before the banner
    try:
        worker = app.worker(**overrides, worker_id=config.worker_id)
        if parent is None and show_banner:
            banner(app, worker.config)
        log.info(
            "worker.online id=%s pid=%d queues=%s concurrency=%d tasks=%d",
            worker.config.worker_id,
            os.getpid(),
            ",".join(worker.config.queues),
            worker.config.concurrency,
            len(registry),
        )
        with contextlib.ExitStack() as stack:
            signals = stack.enter_context(ShutdownSignals(lambda _sig: worker.stop()))
            if parent is not None:
                stack.enter_context(ParentWatch(parent, worker.stop))
            stats = await worker.run()
    finally:
        await app.close()
    log.info(
        "worker.offline id=%s succeeded=%d retried=%d dead=%d cancelled=%d released=%d",
        worker.config.worker_id,
        stats.succeeded,
        stats.retried,
        stats.dead,
        stats.cancelled,
        stats.released,
    )
    max_jobs = config.max_jobs
    recycled = max_jobs is not None and signals.received is None and stats.reserved >= max_jobs
    return EXIT_RECYCLED if recycled and parent is not None else 0


async def _supervise(
    app: Conveyor,
    config: WorkerConfig,
    command: list[str],
    env: dict[str, str],
    processes: int,
    show_banner: bool,
) -> int:
    driver = await app.connect()  # fail here, once, rather than in every child
    try:
        await driver.ping()
    finally:
        await app.close()
    if show_banner:
        banner(app, config, processes)
    return await Supervisor(command, processes, env=env, burst=config.burst).run()
