"""``conveyor demo``: the quick start on the embedded default broker, in one command.

It creates a fresh SQLite file, dispatches a few thousand I/O jobs, some CPU jobs
for the process pool, a flaky job that succeeds on a later attempt, a poison job
that ends in the dead letters and a delayed one; runs a worker in this process with
a progress bar; and prints what happened: counts, throughput and latencies.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from conveyor.app import Conveyor
from conveyor.cli import demo_tasks
from conveyor.cli.logs import configure
from conveyor.cli.output import out
from conveyor.core.dispatch import Dispatch
from conveyor.core.handle import TaskHandle
from conveyor.core.job import JobInfo, JobStatus

CPU_JOBS = 20
CPU_LOOPS = 400_000  # ~50 ms of pure Python
FLAKY = (2, 3, 4)  # each succeeds on this attempt
POISON = 2
DELAY = 2.0


def run_demo(path: str, io_jobs: int = 2000) -> None:
    db = Path(path).resolve()
    for suffix in ("", "-wal", "-shm", "-journal"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    configure("warning", "text")  # the summary tells the story; one line per job would drown it
    url = f"sqlite:///{db}"
    out.print(f"[bold]conveyor demo[/] on [cyan]{url}[/] (a fresh file)\n", soft_wrap=True)
    asyncio.run(_demo(url, io_jobs))
    out.print(
        "\nInspect the dead letters:  "
        f"[bold]conveyor dead list --url {url}[/]\n"
        f"Queue them again:          [bold]conveyor dead retry --all --url {url}[/]",
        soft_wrap=True,
    )


def _jobs(io_jobs: int) -> tuple[list[Dispatch[Any]], Dispatch[Any]]:
    items: list[Dispatch[Any]] = [demo_tasks.io_job(n=i) for i in range(io_jobs)]
    items += [demo_tasks.cpu_job(n=CPU_LOOPS + i) for i in range(CPU_JOBS)]
    items += [demo_tasks.flaky_job(succeed_on=k) for k in FLAKY]
    items += [demo_tasks.poison_job(order_id=1000 + i) for i in range(POISON)]
    delayed = demo_tasks.delayed_job(message="two seconds later").delay(DELAY)
    return items, delayed


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(math.ceil(fraction * len(ordered)) - 1, 0)] if ordered else 0.0


async def _demo(url: str, io_jobs: int) -> None:
    app = Conveyor(url)
    items, delayed = _jobs(io_jobs)
    async with app:
        started = time.perf_counter()
        handles = await app.dispatch_many([*items, delayed])
        enqueue_seconds = time.perf_counter() - started
        total = len(handles)
        out.print(
            f"dispatched {total} jobs in {enqueue_seconds * 1000:.0f} ms "
            f"({total / enqueue_seconds:,.0f} jobs/s): {io_jobs} I/O, {CPU_JOBS} CPU "
            f"(process pool), {len(FLAKY)} flaky, {POISON} poison, 1 delayed by {DELAY:g}s",
            soft_wrap=True,
        )
        worker = app.worker(
            concurrency=200, queues=("default",), burst=False, modules=(demo_tasks.__name__,)
        )
        work_started = time.time()
        running = asyncio.create_task(worker.run())
        stats = worker.stats
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=out, transient=False) as bar:
            progress = bar.add_task("running", total=total, detail="")
            while stats.finished < total and not running.done():
                await asyncio.sleep(0.05)
                detail = (
                    f"[green]{stats.succeeded} ok[/] [yellow]{stats.retried} retried[/] "
                    f"[red]{stats.dead} dead[/]"
                )
                bar.update(progress, completed=stats.finished, detail=detail)
        worker.stop()
        await running  # re-raises what stopped a worker early
        infos = [await app.job_info(h.id) for h in handles]
    _summary(handles, infos, delayed_id=handles[-1].id, work_started=work_started, stats=stats)


def _summary(
    handles: list[TaskHandle[Any]],
    infos: list[JobInfo | None],
    *,
    delayed_id: str,
    work_started: float,
    stats: Any,
) -> None:
    latencies: list[float] = []
    last_finish = work_started
    delayed_after: float | None = None
    by_status: dict[JobStatus, int] = {}
    for info in infos:
        if info is None:
            continue
        by_status[info.status] = by_status.get(info.status, 0) + 1
        if info.finished_at is None:
            continue
        if info.id == delayed_id:
            delayed_after = info.finished_at - info.enqueued_at
            continue
        latencies.append(info.finished_at - info.enqueued_at)
        last_finish = max(last_finish, info.finished_at)
    busy = max(last_finish - work_started, 1e-6)
    table = Table(title="summary", title_justify="left", show_header=False)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("jobs", str(len(handles)))
    table.add_row("succeeded", f"[green]{by_status.get(JobStatus.SUCCEEDED, 0)}[/]")
    table.add_row("retries", f"[yellow]{stats.retried}[/] (flaky jobs, then poison ones)")
    table.add_row("dead", f"[red]{by_status.get(JobStatus.DEAD, 0)}[/] (in the dead letters)")
    table.add_row("throughput", f"{len(latencies) / busy:,.0f} jobs/s ({busy:.2f}s busy)")
    table.add_row("latency p50", f"{_percentile(latencies, 0.50) * 1000:,.0f} ms dispatch→finish")
    table.add_row("latency p99", f"{_percentile(latencies, 0.99) * 1000:,.0f} ms dispatch→finish")
    if delayed_after is not None:
        table.add_row("delayed job", f"finished {delayed_after:.2f}s after dispatch")
    out.print(table)
    logging.getLogger("conveyor").debug("demo.done")
