"""Typed dispatch that must check cleanly; ``# R:`` marks the type mypy must reveal.

Checked by ``test_mypy.py``; never imported or run.
"""

from __future__ import annotations

from typing import reveal_type

from conveyor import Conveyor, Dispatch, Task, TaskHandle, dispatch_many, task

app = Conveyor("memory://")


@task
async def send_email(to: str, subject: str) -> str:
    return to + subject


@task
def double(x: int) -> int:
    return x * 2


@task(queue="q", max_attempts=2, timeout=5)
async def queued(n: int, *, scale: float = 1.0) -> list[int]:
    return [n]


@app.task
async def on_app(flag: bool) -> bytes:
    return b""


@app.task(queue="x")
def on_app_sync(flag: bool) -> float:
    return 1.0


class SendReport(Task[str]):
    queue = "reports"

    async def handle(self, user_id: int) -> str:
        return str(user_id)


async def main() -> None:
    pending = send_email(to="a@b.c", subject="Hi")
    reveal_type(pending)  # R: conveyor.core.dispatch.Dispatch[builtins.str]
    handle = await pending.dispatch()
    reveal_type(handle)  # R: conveyor.core.handle.TaskHandle[builtins.str]
    reveal_type(await handle.result())  # R: builtins.str
    reveal_type(await handle.result(timeout=1))  # R: builtins.str

    shortcut = await send_email.dispatch(to="a@b.c", subject="Hi")
    reveal_type(shortcut)  # R: conveyor.core.handle.TaskHandle[builtins.str]

    chained = send_email("a@b.c", "Hi").on_queue("high").delay(60).max_attempts(5)
    chained = chained.timeout(30).priority(1).using(app)
    reveal_type(chained)  # R: conveyor.core.dispatch.Dispatch[builtins.str]

    from_sync = send_email("a@b.c", "Hi").dispatch_sync()
    reveal_type(from_sync)  # R: conveyor.core.handle.TaskHandle[builtins.str]

    reveal_type(double)  # R: conveyor.core.task.TaskDef[[x: builtins.int], builtins.int]
    sync_handle = await double(2).dispatch()
    reveal_type(sync_handle)  # R: conveyor.core.handle.TaskHandle[builtins.int]
    reveal_type(await sync_handle.result())  # R: builtins.int

    with_options = await queued(1, scale=2.0).dispatch()
    reveal_type(with_options)  # R: conveyor.core.handle.TaskHandle[builtins.list[builtins.int]]

    bound = await on_app(True).dispatch()
    reveal_type(bound)  # R: conveyor.core.handle.TaskHandle[builtins.bytes]
    bound_sync = await on_app_sync(flag=False).dispatch()
    reveal_type(bound_sync)  # R: conveyor.core.handle.TaskHandle[builtins.float]

    report = SendReport(user_id=1).on_queue("low")
    reveal_type(report)  # R: conveyor.core.dispatch.Dispatch[builtins.str]
    report_handle = await SendReport(user_id=1).dispatch()
    reveal_type(report_handle)  # R: conveyor.core.handle.TaskHandle[builtins.str]

    many = await dispatch_many([send_email("a", "b"), send_email("c", "d")])
    reveal_type(many)  # R: builtins.list[conveyor.core.handle.TaskHandle[Any]]

    typed: TaskHandle[str] = app.handle(handle.id, send_email)
    as_dispatch: Dispatch[str] = SendReport(2).as_dispatch()
    text: str = await typed.result()
    print(text, as_dispatch)
