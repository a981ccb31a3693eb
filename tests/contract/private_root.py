"""Servers unpacked into a private root (``install_mysql.sh``, ``install_valkey.sh``).

Such a binary needs a newer C runtime than the system's, unpacked beside it: it runs
through that root's own loader. Used by :mod:`mysql_server` and :mod:`valkey_server`.
"""

from __future__ import annotations

import glob
import os
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

_LIBS = "usr/lib/x86_64-linux-gnu"


def command_for(binary: Path) -> list[str]:
    """``binary``, run by its private root's loader when it was unpacked with one.

    The path is kept as given (a link may pick the program's role by its name).
    """
    root = binary.resolve().parents[2]  # <root>/usr/{bin,sbin}/<program>
    loader = root / _LIBS / "ld-linux-x86-64.so.2"
    if not loader.exists():
        return [str(binary)]
    libs = f"{root / _LIBS}:/{_LIBS}:/lib/x86_64-linux-gnu"
    return [str(loader), "--library-path", libs, str(binary)]


def find_server(
    env: str, pattern: str, accept: Callable[[str], bool], extra: Iterable[str] = ()
) -> list[str] | None:
    """The command of the first candidate whose ``--version`` output ``accept`` takes.

    Candidates: ``$env``, then what ``pattern`` globs (newest name first), then ``extra``.
    """
    candidates = [os.environ[env]] if os.environ.get(env) else []
    candidates += sorted(glob.glob(pattern), reverse=True)
    candidates += list(extra)
    for binary in candidates:
        command = command_for(Path(binary))
        try:
            version = subprocess.run(
                [*command, "--version"], capture_output=True, text=True, timeout=30
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        if accept(version):
            return command
    return None
