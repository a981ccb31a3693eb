"""The public surface: an exact, curated ``__all__``, and an import with no side effects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import conveyor

EXPECTED_ALL = [
    "ArgumentError",
    "BrokerError",
    "BrokerUnavailableError",
    "ConfigurationError",
    "Conveyor",
    "ConveyorError",
    "DecodeError",
    "Dispatch",
    "DispatchError",
    "Fail",
    "JobContext",
    "JobInfo",
    "JobNotFoundError",
    "JobStatus",
    "PayloadTooLargeError",
    "Progress",
    "Retry",
    "SchemaError",
    "Settings",
    "Snooze",
    "Task",
    "TaskCancelledError",
    "TaskDef",
    "TaskFailed",
    "TaskHandle",
    "__version__",
    "current_job",
    "dispatch_many",
    "get_app",
    "init",
    "task",
]


def test_all_is_the_curated_list() -> None:
    # adding to the public API is a decision: update this list on purpose
    assert conveyor.__all__ == EXPECTED_ALL


def test_all_imports_are_exported() -> None:
    """Every public name of the package is in ``__all__`` (submodules aside), sorted."""
    public = sorted(
        name
        for name, value in vars(conveyor).items()
        if (not name.startswith("_") or name == "__version__")
        and not isinstance(value, types.ModuleType)
    )
    assert conveyor.__all__ == public


def test_every_exported_name_exists() -> None:
    namespace: dict[str, object] = {}
    exec("from conveyor import *", namespace)
    for name in conveyor.__all__:
        assert name in namespace, name


def test_every_error_derives_from_the_root() -> None:
    errors = [
        getattr(conveyor, n)
        for n in conveyor.__all__
        if isinstance(getattr(conveyor, n), type) and n.endswith(("Error", "Failed"))
    ]
    assert errors
    for error in errors:
        assert issubclass(error, conveyor.ConveyorError), error
    # a wrong argument is also a TypeError, where Python users look for it
    assert issubclass(conveyor.ArgumentError, TypeError)


_PROBE = """
import json, os, sys
events = []
def hook(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "sqlite3.connect", "subprocess.Popen"):
        events.append([event, repr(args)[:200]])
    elif event == "open":
        path, mode, flags = args
        writing = (mode is not None and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
        )
        if writing:
            events.append([event, repr(args)[:200]])
sys.addaudithook(hook)
import conveyor
import conveyor.testing
conveyor.task(lambda: None)  # defining a task touches nothing either
eager = ("conveyor.drivers.memory", "conveyor.drivers.sqlite", "aiosqlite")
loaded = sorted(m for m in sys.modules if m.startswith(eager))
print(json.dumps({"events": events, "modules": loaded}))
"""


def test_import_connects_to_nothing_and_creates_no_files(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "PYTHONSTARTUP"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["events"] == []
    # concrete drivers are imported lazily, when a URL first asks for one
    assert report["modules"] == []
    assert list(tmp_path.iterdir()) == []
