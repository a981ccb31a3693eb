"""Task name -> definition: the only way a worker finds code to run.

A worker runs a job only if its task name is registered here by importing the
modules the worker was told to load. Nothing is ever imported because a message
named it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.exceptions import ConfigurationError

if TYPE_CHECKING:
    from conveyor.core.task import TaskDef


class Registry:
    """A mapping of task names to task definitions."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskDef[Any, Any]] = {}

    def add(self, task: TaskDef[Any, Any]) -> None:
        existing = self._tasks.get(task.name)
        if existing is not None and existing.origin != task.origin:
            raise ConfigurationError(
                f"task name {task.name!r} is already used by {existing.origin}; "
                f"give {task.origin} another name with @task(name=...)"
            )
        self._tasks[task.name] = task

    def get(self, name: str) -> TaskDef[Any, Any] | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


#: Every task defined with ``@task`` or ``Task`` in this process.
registry = Registry()
