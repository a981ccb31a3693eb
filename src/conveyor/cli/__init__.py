"""The ``conveyor`` command line (Typer + Rich). See ``conveyor --help``.

Importing this package is cheap: the commands load when :func:`main` runs, so
modules under it (such as the demo's tasks) can be imported by worker children.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``conveyor`` console script and ``python -m conveyor``."""
    from conveyor.cli.main import run

    run(argv)


__all__ = ["main"]
