"""Misuse mypy must reject; ``# E: <code>`` marks the error expected on that line.

Checked by ``test_mypy.py``; never imported or run.
"""

from __future__ import annotations

from conveyor import Task, task


@task
async def send_email(to: str, subject: str) -> str:
    return to + subject


@task
def double(x: int) -> int:
    return x * 2


class SendReport(Task[str]):
    async def handle(self, user_id: int) -> str:
        return str(user_id)


async def main() -> None:
    send_email(to=1, subject="x")  # E: arg-type
    send_email(too="a@b.c", subject="x")  # E: call-arg
    send_email("a@b.c")  # E: call-arg
    double("2")  # E: arg-type
    await send_email.dispatch(to="a", subject=2)  # E: arg-type
    handle = await send_email(to="a", subject="b").dispatch()
    number: int = await handle.result()  # E: assignment
    doubled: str = await (await double(2).dispatch()).result()  # E: assignment
    send_email("a", "b").on_queue(1)  # E: arg-type
    send_email("a", "b").delay("soon")  # E: arg-type
    SendReport(user_id=1).on_queue("low").priority("high")  # E: arg-type
    report: int = await (await SendReport(user_id=1).dispatch()).result()  # E: assignment
    print(number, doubled, report)
