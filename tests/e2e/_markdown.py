"""Reading code blocks out of the Markdown documentation, for ``test_docs.py``.

Conventions the documentation follows (they are what the tests rely on):

- every fenced ```` ```python ```` block runs, in page order, in one namespace per page;
- an HTML comment on the line before a block changes that:

  - ``<!-- not-tested: why -->``: shown only (a signature, a fragment); the reason is required;
  - ``<!-- file: path/name.py -->`` (on a block of any language): the block is the
    content of that file; the test writes it into the page's working directory (which
    is on ``sys.path``) instead of running it, so later blocks can import it and worker
    processes can too; a written ``test_*.py`` is then run with pytest;

- ```` ```console ```` blocks show shell sessions; their ``$ conveyor ...`` lines are
  checked against the real command line parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = frozenset({"python", "py"})

_FENCE = re.compile(r"^(?P<indent>[ ]*)(?P<fence>`{3,}|~{3,})[ ]*(?P<info>[^\s`]*)")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-tested|file)\s*:\s*(?P<arg>.*?)\s*-->\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block of a Markdown page."""

    page: Path
    line: int  # 1-based line number of the block's first line of code
    lang: str
    code: str
    marker: str | None = None  # "not-tested" or "file"
    arg: str = ""  # the reason, or the file's path

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def is_python(self) -> bool:
        return self.lang in PYTHON

    def source(self) -> str:
        """The code, padded so that line numbers in tracebacks match the page's."""
        return "\n" * (self.line - 1) + self.code


def doc_pages() -> list[Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the marker comment that precedes it, if any."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    marker: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _FENCE.match(line)
        if match is None:
            found = _MARKER.match(line)
            if found is not None:
                marker = (found["kind"], found["arg"])
            elif line.strip():
                marker = None  # a marker applies to the block right after it only
            i += 1
            continue
        indent, fence = len(match["indent"]), match["fence"]
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            text = lines[i]
            if indent:  # a block inside a list item: drop the item's indentation
                text = text[indent:] if text[:indent].isspace() else text.lstrip()
            body.append(text)
            i += 1
        start = i - len(body) + 1  # 1-based line of the first line of code
        kind, arg = marker if marker is not None else (None, "")
        lang = match["info"].lower()
        out.append(Block(page, start, lang, "\n".join(body) + "\n", kind, arg))
        marker = None
        i += 1  # the closing fence
    return out


def console_commands(block: Block) -> list[str]:
    """The ``$ ...`` command lines of a console block, continuation lines joined."""
    commands: list[str] = []
    current: str | None = None
    for raw in block.code.splitlines():
        line = raw.rstrip()
        if current is not None:
            current += " " + line.strip().rstrip("\\").strip()
            if not line.endswith("\\"):
                commands.append(current)
                current = None
            continue
        if line.startswith("$ "):
            text = line[2:].rstrip("\\").strip()
            if line.endswith("\\"):
                current = text
            else:
                commands.append(text)
    if current is not None:
        commands.append(current)
    return commands
