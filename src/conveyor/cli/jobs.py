"""``conveyor jobs show|cancel`` and ``conveyor enqueue``: one job at a time."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from conveyor.app import Conveyor
from conveyor.cli.loading import open_app
from conveyor.cli.options import AppOption, ModulesOption, UrlOption, from_command_line
from conveyor.cli.output import USAGE, err, fail, out, when
from conveyor.core.job import JobInfo, JobStatus
from conveyor.core.registry import registry

jobs_app = typer.Typer(
    name="jobs", help="Look at or cancel one job.", no_args_is_help=True, add_completion=False
)

JobId = Annotated[str, typer.Argument(help="The job id (as printed by enqueue or dead list).")]

_STATUS_STYLE = {
    JobStatus.SUCCEEDED: "green",
    JobStatus.DEAD: "red",
    JobStatus.CANCELLED: "yellow",
    JobStatus.RETRYING: "yellow",
    JobStatus.ACTIVE: "cyan",
}


def _decoded(app: Conveyor, info: JobInfo) -> tuple[str, str | None]:
    """The job's arguments and result, decoded without types, as reprs."""
    codec = app.codec
    try:
        envelope = codec.decode_envelope(info.payload)
        args = repr(codec.decode(bytes(envelope.args)))
    except Exception as exc:
        args = f"<undecodable: {type(exc).__name__}: {exc}>"
    result: str | None = None
    if info.result is not None:
        try:
            result = repr(codec.decode(info.result))
        except Exception as exc:
            result = f"<undecodable: {type(exc).__name__}: {exc}>"
    return args, result


def render_job(app: Conveyor, info: JobInfo) -> None:
    """Everything known about one job, traceback last."""
    args, result = _decoded(app, info)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("id", info.id)
    grid.add_row("task", info.task)
    grid.add_row("queue", info.queue)
    grid.add_row("status", Text(info.status.value, style=_STATUS_STYLE.get(info.status, "")))
    grid.add_row("attempts", str(info.attempts))
    grid.add_row("priority", str(info.priority))
    grid.add_row("args", args)
    grid.add_row("enqueued", when(info.enqueued_at))
    grid.add_row("run at", when(info.run_at))
    grid.add_row("finished", when(info.finished_at))
    if info.progress is not None:
        message = f" {info.progress_message}" if info.progress_message else ""
        grid.add_row("progress", f"{info.progress:.0%}{message}")
    if info.cancel_requested and not info.status.finished:
        grid.add_row("cancel", "requested")
    if info.status is JobStatus.SUCCEEDED:
        grid.add_row("result", result if result is not None else "- (not kept: result_ttl)")
    if info.error is not None:
        grid.add_row("error", Text(f"{info.error.type}: {info.error.message}", style="red"))
    out.print(grid)
    if info.error is not None and info.error.traceback:
        out.print()
        out.print(Text(info.error.traceback.rstrip(), style="dim"), soft_wrap=True)


async def fetch_job(app: Conveyor, job_id: str) -> JobInfo:
    info = await app.job_info(job_id)
    if info is None:
        fail(f"job {job_id} not found (never existed, or pruned)")
    return info


@jobs_app.command("show")
def show(
    ctx: typer.Context,
    job_id: JobId,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Show a job: state, attempts, arguments, result or error and traceback, progress."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def go() -> None:
        async with instance:
            render_job(instance, await fetch_job(instance, job_id))

    asyncio.run(go())


@jobs_app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: JobId,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Cancel a job: a waiting one is removed, a running one is asked to stop."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def go() -> None:
        async with instance:
            info = await fetch_job(instance, job_id)
            if info.status.finished:
                fail(f"job {job_id} already finished ({info.status.value})")
            if not await instance.cancel_job(job_id):
                fail(f"job {job_id} finished before it could be cancelled")
            after = await instance.job_info(job_id)
            if after is not None and after.status is JobStatus.CANCELLED:
                out.print(f"cancelled {job_id}")
            else:
                out.print(f"cancel requested for running job {job_id}")

    asyncio.run(go())


def enqueue(
    ctx: typer.Context,
    task_name: Annotated[str, typer.Argument(help="The task's registered name.")],
    args: Annotated[
        str,
        typer.Option(
            "--args", "-a", help='Keyword arguments as a JSON object: \'{"to": "a@b.c"}\''
        ),
    ] = "{}",
    queue: Annotated[
        str | None,
        typer.Option("--queue", "-q", help="Queue (default: the task's).", show_default=False),
    ] = None,
    delay: Annotated[
        float | None,
        typer.Option("--delay", min=0, help="Seconds to wait before it runs.", show_default=False),
    ] = None,
    modules: ModulesOption = None,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Dispatch a task by name with JSON arguments; prints the job id."""
    instance = open_app(
        url, app, modules or [], url_from_command_line=from_command_line(ctx, "url")
    )
    definition = registry.get(task_name)
    if definition is None:
        known = ", ".join(registry.names()) or "none: import them with --module"
        fail(f"unknown task {task_name!r}; registered tasks: {known}", USAGE)
    try:
        kwargs: Any = json.loads(args)
    except json.JSONDecodeError as exc:
        fail(f"--args is not valid JSON: {exc}", USAGE)
    if not isinstance(kwargs, dict):
        fail('--args must be a JSON object of keyword arguments, e.g. {"to": "a@b.c"}', USAGE)
    dispatch = definition(**kwargs).using(instance)
    if queue is not None:
        dispatch = dispatch.on_queue(queue)
    if delay:
        dispatch = dispatch.delay(delay)

    async def go() -> str:
        async with instance:
            handle = await dispatch.dispatch()
            return handle.id

    job_id = asyncio.run(go())
    out.print(job_id)
    where = f" on {queue}" if queue else ""
    err.print(f"[dim]enqueued {task_name}{where} as {job_id}[/]", soft_wrap=True)
