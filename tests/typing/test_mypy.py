"""The typed API, checked by mypy on snippet files (``ok_dispatch.py``, ``bad_args.py``).

Each snippet line may carry an expectation: ``# R: <type>`` (what ``reveal_type``
on that line must show) or ``# E: <code>`` (an error mypy must report there).
Anything mypy reports that no comment expects fails the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api")

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SNIPPETS = ("ok_dispatch.py", "bad_args.py")
EXPECT = re.compile(r"^\s*[^#\s\"].*#\s*(?P<kind>[RE]):\s*(?P<what>.+?)\s*$")
REPORT = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): (?P<level>error|note): (?P<msg>.*)$")


@dataclass(frozen=True)
class Report:
    file: str
    line: int
    level: str
    message: str


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[Report]:
    cache = tmp_path_factory.mktemp("mypy-cache")  # never the repository's .mypy_cache
    stdout, stderr, _ = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            "--show-error-codes",
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            *(str(HERE / name) for name in SNIPPETS),
        ]
    )
    assert not stderr, stderr
    out = []
    for raw in stdout.splitlines():
        m = REPORT.match(raw)
        assert m is not None, f"unexpected mypy output: {raw}"
        out.append(Report(Path(m["file"]).name, int(m["line"]), m["level"], m["msg"]))
    return out


def unqualified(text: str) -> str:
    """Drop ``builtins.``: mypy 1.x writes ``builtins.str`` where 2.x writes ``str``."""
    return text.replace("builtins.", "")


def expectations(name: str) -> dict[int, tuple[str, str]]:
    found = {}
    for number, text in enumerate((HERE / name).read_text().splitlines(), start=1):
        m = EXPECT.search(text)
        if m is not None:
            found[number] = (m["kind"], m["what"])
    return found


@pytest.mark.parametrize("name", SNIPPETS)
def test_snippet_types(reports: list[Report], name: str) -> None:
    expected = expectations(name)
    assert expected, f"{name} has no expectations"
    mine = [r for r in reports if r.file == name]
    problems: list[str] = []
    for line, (kind, what) in sorted(expected.items()):
        here = [r for r in mine if r.line == line]
        if kind == "R":
            want = f'Revealed type is "{unqualified(what)}"'
            if not any(r.level == "note" and unqualified(r.message) == want for r in here):
                problems.append(f"{name}:{line}: expected {want}, got {[r.message for r in here]}")
        elif not any(r.level == "error" and r.message.endswith(f"[{what}]") for r in here):
            problems.append(f"{name}:{line}: expected an [{what}] error, got {here}")
    for r in mine:
        if r.line not in expected:
            problems.append(f"{name}:{r.line}: unexpected {r.level}: {r.message}")
    assert not problems, "\n".join(problems)


def test_ok_snippet_has_no_errors(reports: list[Report]) -> None:
    assert [r for r in reports if r.file == "ok_dispatch.py" and r.level == "error"] == []
