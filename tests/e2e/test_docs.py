"""The documentation is executable: README.md and docs/*.md examples run as written.

- Each page's ```python blocks run in order, in one namespace, in a fresh temporary
  working directory, with no ``CONVEYOR_*`` variables set: the default app is whatever
  a user would get there (``sqlite:///conveyor.db`` in that directory) unless the page
  says otherwise. Top-level ``await`` works; a page keeps one event loop throughout.
- ``<!-- file: x.py -->`` blocks are written to disk rather than run; a written
  ``test_*.py`` is then run with pytest in a subprocess, as a user would run it.
- The README quick start runs as a user runs it: the files on disk, ``python main.py``
  in one process and ``python -m conveyor worker`` in another, sharing a SQLite file.
- Every ``$ conveyor ...`` line shown in a console block parses with the real CLI.
- The settings table in docs/configuration.md matches :class:`conveyor.Settings`.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import shlex
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

import conveyor
import conveyor.app
from conveyor.core import dispatch as dispatch_module

from ._markdown import ROOT, Block, blocks, console_commands, doc_pages

README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
#: produced by `make bench`, so possibly absent from a fresh checkout
GENERATED = {"benchmarks/results/latest.png"}


def _python_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.is_python]


def _file_blocks(page: Path) -> list[Block]:
    return [b for b in blocks(page) if b.marker == "file"]


def _page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


PAGES = [p for p in doc_pages() if p.exists() and (_python_blocks(p) or _file_blocks(p))]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "PYTEST_"))}


# -- running a page -------------------------------------------------------------------


def _run_block(runner: asyncio.Runner, block: Block, namespace: dict[str, Any]) -> None:
    code = compile(
        block.source(),
        str(block.page),  # tracebacks then quote the Markdown line itself
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
        dont_inherit=True,
    )
    try:
        if code.co_flags & inspect.CO_COROUTINE:
            runner.run(eval(code, namespace))
        else:
            exec(code, namespace)
    except BaseException as exc:
        exc.add_note(f"in the example at {block.where}")
        raise


async def _close_apps(namespace: dict[str, Any]) -> None:
    apps = {id(v): v for v in namespace.values() if isinstance(v, conveyor.Conveyor)}
    default = dispatch_module._default_app
    if isinstance(default, conveyor.Conveyor):
        apps[id(default)] = default
    for app in apps.values():
        await app.close()


def _run_pytest(path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"),
            # what a project using pytest-asyncio sets in its own configuration:
            *("-o", "asyncio_default_fixture_loop_scope=function"),
            path.name,
        ],
        cwd=path.parent,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"pytest {path.name}:\n{result.stdout}\n{result.stderr}"


def _page_param(page: Path) -> Any:
    # pages whose examples start processes (a process pool, pytest in a subprocess)
    spawns = any(b.marker == "file" and b.arg.startswith("test_") for b in blocks(page)) or any(
        "process=True" in b.code for b in _python_blocks(page) if b.marker != "not-tested"
    )
    return pytest.param(page, id=_page_id(page), marks=[pytest.mark.slow] if spawns else [])


@pytest.mark.parametrize("page", [_page_param(p) for p in PAGES])
def test_examples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("CONVEYOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    # the default app is created afresh from settings, as in a new process
    monkeypatch.setattr(dispatch_module, "_default_app", None)
    monkeypatch.setattr(conveyor.app, "_default", None)
    module = types.ModuleType(f"docs_{page.stem.lower()}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    before = set(sys.modules)
    environ = dict(os.environ)
    test_files: list[Path] = []
    try:
        with asyncio.Runner() as runner:
            try:
                for block in blocks(page):
                    if block.marker == "file":
                        path = tmp_path / block.arg
                        path.parent.mkdir(parents=True, exist_ok=True)
                        path.write_text(block.code, encoding="utf-8")
                        if path.suffix == ".py":
                            compile(block.code, str(path), "exec")  # it must at least parse
                            if path.name.startswith("test_"):
                                test_files.append(path)
                    elif block.is_python and block.marker != "not-tested":
                        _run_block(runner, block, namespace)
            finally:
                runner.run(_close_apps(namespace))
        for path in test_files:
            _run_pytest(path)
    finally:
        os.environ.clear()  # an example may set CONVEYOR_* variables
        os.environ.update(environ)
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None) or ""
            if origin.startswith(str(tmp_path)):
                del sys.modules[name]


# -- the README quick start, as a user runs it ----------------------------------------------


def _expected_output(command: str) -> list[str]:
    """The output lines shown after ``$ <command>`` in the README's console blocks."""
    for block in blocks(README):
        if block.lang != "console":
            continue
        lines = block.code.splitlines()
        if f"$ {command}" in lines:
            after = lines[lines.index(f"$ {command}") + 1 :]
            shown: list[str] = []
            for line in after:
                if line.startswith("$ "):
                    break
                shown.append(line)
            return [line for line in shown if line.strip()]
    raise AssertionError(f"README.md shows no output for `$ {command}`")


@pytest.mark.slow
def test_readme_quick_start(tmp_path: Path) -> None:
    files = {b.arg: b.code for b in blocks(README) if b.marker == "file"}
    assert {"myapp/tasks.py", "main.py"} <= set(files), sorted(files)
    for name, code in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    expected = _expected_output("python main.py")
    env = _clean_env()

    producer = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1"},  # line by line, as on a terminal
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # wait until the jobs are in the broker, then run a worker as another process would
        stdout = producer.stdout
        assert stdout is not None
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=30)
        assert first, f"main.py printed nothing (exit code {producer.poll()})"
        assert first[0].strip() == expected[0]
        worker = subprocess.run(
            [
                *(sys.executable, "-m", "conveyor", "worker", "myapp.tasks"),
                *("--burst", "--url", "sqlite:///conveyor.db"),
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert worker.returncode == 0, worker.stderr
        assert "job.succeeded" in worker.stderr
        rest, errors = producer.communicate(timeout=30)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    assert producer.returncode == 0, errors
    assert [first[0].rstrip("\n"), *rest.splitlines()] == expected


def test_readme_starts_with_the_setup_commands() -> None:
    first = next(b for b in blocks(README))
    commands = [line.split("#")[0].strip() for line in first.code.splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.MULTILINE)
    assert re.search(r"^test:", makefile, re.MULTILINE)


# -- what the pages claim about the code ------------------------------------------------------


def test_untested_blocks_say_why_and_stay_few() -> None:
    python = [b for page in doc_pages() if page.exists() for b in _python_blocks(page)]
    untested = [b for b in python if b.marker == "not-tested"]
    for block in untested:
        assert block.arg, f"{block.where}: say why the block is not tested"
    assert len(untested) <= len(python) // 5, [b.where for b in untested]


def _cli_command() -> Any:
    import typer

    from conveyor.cli.main import app

    return typer.main.get_command(app)


CONSOLE = [
    (b, command)
    for page in doc_pages()
    if page.exists()
    for b in blocks(page)
    if b.lang == "console"
    for command in console_commands(b)
    if command.startswith(("conveyor ", "python -m conveyor "))
]


@pytest.mark.parametrize(("block", "command"), CONSOLE, ids=[f"{b.where}:{c}" for b, c in CONSOLE])
def test_console_commands_parse(block: Block, command: str) -> None:
    import click

    args = shlex.split(command, comments=True)
    for i, arg in enumerate(args):
        if arg in {">", ">>", "|", "&&", ";", "2>"}:  # the shell's, not conveyor's
            args = args[:i]
            break
    args = args[3:] if args[0] == "python" else args[1:]
    group = _cli_command()
    cmd: click.Command = group
    while isinstance(cmd, click.Group) and args and args[0] in cmd.commands:
        cmd = cmd.commands[args.pop(0)]
    if "--help" in args or "--version" in args:
        return
    try:
        cmd.make_context(cmd.name or "conveyor", list(args), resilient_parsing=False)
    except click.UsageError as exc:
        pytest.fail(f"{block.where}: `{command}` does not parse: {exc}")


def _settings_rows() -> dict[str, list[str]]:
    text = CONFIGURATION.read_text(encoding="utf-8")
    start = text.index("<!-- settings:start -->")
    end = text.index("<!-- settings:end -->")
    rows: dict[str, list[str]] = {}
    for line in text[start:end].splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and not set(cells[0]) <= {"-", ":"}:
            rows[cells[0].strip("`")] = cells
    return rows


def test_settings_table_matches_the_settings_model() -> None:
    rows = _settings_rows()
    fields = conveyor.Settings.model_fields
    assert list(rows) == list(fields), "the table lists every field, in the model's order"
    for name, info in fields.items():
        cells = rows[name]
        assert cells[1] == f"`CONVEYOR_{name.upper()}`", cells
        if info.default_factory is None:
            default = "none" if info.default is None else str(info.default)
            assert cells[2] == f"`{default}`", (name, cells[2], default)


_LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s#]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", [p for p in doc_pages() if p.exists()], ids=_page_id)
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in _LINK.findall(text):
        resolved = (page.parent / target).resolve()
        relative = str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else target
        if relative in GENERATED:
            continue
        assert resolved.exists(), f"{_page_id(page)} links to missing {target}"


def _broker_rows() -> list[tuple[set[str], str]]:
    """``(schemes, status)`` for each row of the README's table of brokers."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Brokers") :]
    section = section[: section.index("\n#", 1)]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        schemes = set(re.findall(r"`([a-z]+)://", cells[0]))
        if len(cells) >= 2 and schemes:
            rows.append((schemes, cells[1].split(";")[0].strip()))
    return rows


def test_readme_lists_the_drivers_this_version_has() -> None:
    from conveyor.drivers import known_schemes

    rows = _broker_rows()
    available = set().union(*(s for s, status in rows if status == "available"))
    coming = set().union(*(s for s, status in rows if status == "coming"))
    assert {status for _, status in rows} <= {"available", "coming"}
    assert available == set(known_schemes()), "README: the brokers table is out of date"
    for scheme in coming:
        with pytest.raises(conveyor.ConfigurationError, match="not available in this version"):
            conveyor.Conveyor(f"{scheme}://localhost")
