"""``conveyor dead list|show|retry|purge``: the dead-letter store."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from conveyor.cli.jobs import fetch_job, render_job
from conveyor.cli.loading import open_app
from conveyor.cli.options import AppOption, QueueFilterOption, UrlOption, from_command_line
from conveyor.cli.output import USAGE, fail, is_interactive, out, shorten, when
from conveyor.core.job import JobStatus

dead_app = typer.Typer(
    name="dead",
    help="List, inspect, retry and purge dead letters.",
    no_args_is_help=True,
    add_completion=False,
)


@dead_app.command("list")
def list_(
    ctx: typer.Context,
    queue: QueueFilterOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """List dead jobs, oldest first, with their last error."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def go() -> None:
        async with instance:
            jobs = await instance.dead_letters(queue=queue, limit=limit)
        if not jobs:
            where = f" in queue {queue}" if queue else ""
            out.print(f"no dead letters{where}")
            return
        table = Table(title=f"dead letters ({len(jobs)}{'+' if len(jobs) == limit else ''})")
        table.add_column("id", no_wrap=True, min_width=32)
        table.add_column("task", overflow="fold")
        table.add_column("queue")
        table.add_column("attempts", justify="right")
        table.add_column("error", style="red", overflow="fold")
        table.add_column("message", overflow="fold")
        table.add_column("died", no_wrap=True)
        for job in jobs:
            error = job.error
            table.add_row(
                job.id,
                job.task,
                job.queue,
                str(job.attempts),
                error.type if error else "-",
                shorten(error.message) if error else "",
                when(job.finished_at),
            )
        natural = Measurement.get(out, out.options.update_width(10_000), table).maximum
        if natural <= out.width:
            out.print(table)
            return
        # narrower than the table (80 columns, or piped): squeezed, its columns showed
        # nothing, headers included; one job per two lines instead, unwrapped for grep
        out.print(table.title, style="bold")
        for job in jobs:
            error = job.error
            out.print(
                Text.assemble(
                    (job.id, "bold"),
                    f"  {job.task}  {job.queue}  attempts {job.attempts}",
                    f"  died {when(job.finished_at)}",
                ),
                soft_wrap=True,
            )
            if error:
                message = f": {shorten(error.message)}"
                out.print(Text.assemble("    ", (error.type, "red"), message), soft_wrap=True)

    asyncio.run(go())


@dead_app.command("show")
def show(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="The dead job's id.")],
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Show one dead job with its traceback."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def go() -> None:
        async with instance:
            info = await fetch_job(instance, job_id)
        if info.status is not JobStatus.DEAD:
            fail(f"job {job_id} is not in the dead letters (it is {info.status.value})")
        render_job(instance, info)

    asyncio.run(go())


@dead_app.command("retry")
def retry(
    ctx: typer.Context,
    job_id: Annotated[
        str | None, typer.Argument(help="The dead job to queue again.", show_default=False)
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Queue every dead job again.")] = False,
    queue: QueueFilterOption = None,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Queue a dead job again with fresh attempts (or all of them with --all)."""
    if (job_id is None) == (not all_):
        fail("give a job id or --all (not both)", USAGE)
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))

    async def go() -> int:
        async with instance:
            return await instance.retry_dead(job_id, queue=queue)

    count = asyncio.run(go())
    if job_id is not None:
        if count == 0:
            fail(f"job {job_id} is not in the dead letters")
        out.print(f"queued {job_id} again")
    else:
        out.print(f"queued {count} dead job{'s' if count != 1 else ''} again")


@dead_app.command("purge")
def purge(
    ctx: typer.Context,
    queue: QueueFilterOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    url: UrlOption = None,
    app: AppOption = None,
) -> None:
    """Delete dead letters for good (of one queue, or all)."""
    instance = open_app(url, app, url_from_command_line=from_command_line(ctx, "url"))
    where = f" of queue {queue}" if queue else ""
    if not yes:
        if not is_interactive():
            fail("purge deletes jobs for good: pass --yes to confirm", USAGE)
        typer.confirm(f"Delete every dead letter{where}?", abort=True)

    async def go() -> int:
        async with instance:
            return await instance.purge_dead(queue)

    count = asyncio.run(go())
    out.print(f"purged {count} dead job{'s' if count != 1 else ''}{where}")
