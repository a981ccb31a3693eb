"""One virtualenv per peer framework under ``benchmarks/.venvs/<peer>/``, with pinned versions.

``python -m benchmarks.venvs [--peers arq,saq] [--force]`` builds them; ``python -m
benchmarks`` calls :func:`ensure` before it measures a peer. A venv is rebuilt only when
its pins (or the Python it needs) change: the pins are written to ``.pins`` inside it.

Each peer's worker and producer run from its own venv's interpreter with the repository
root as the working directory, so ``benchmarks.peers.<peer>`` (standard library plus that
one peer) imports and Conveyor's dependencies never mix with the peer's.

Every peer venv also gets ``hiredis`` (redis-py uses it when present, as Conveyor's
``redis://`` driver does) and ``uvloop`` (the runs use the same event loop as Conveyor's).

Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "benchmarks" / ".venvs"

#: installed into every peer venv, beside the peer's own pins
COMMON = ("hiredis==3.5.0", "uvloop==0.23.0")


@dataclass(frozen=True, slots=True)
class Peer:
    name: str
    pins: tuple[str, ...]
    min_python: tuple[int, int] = (3, 11)
    note: str = ""


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer("asynctasq", ("asynctasq[redis]==1.7.0",), (3, 12), "AsyncTasQ needs Python >= 3.12"),
        Peer("celery", ("celery[redis]==5.7.0", "gevent==26.9.0")),
        Peer("arq", ("arq==0.28.0",)),
        Peer("taskiq", ("taskiq==0.13.0", "taskiq-redis==1.2.4")),
        Peer("saq", ("saq[redis]==0.26.4", "typing_extensions==4.15.0")),
        Peer("streaq", ("streaq==7.2.0",)),
        Peer("dramatiq", ("dramatiq[redis]==2.2.1", "gevent==26.9.0")),
        Peer("rq", ("rq==2.12.0",)),
        # on PostgreSQL (benchmarks.sql_compare), not Redis
        Peer("procrastinate", ("procrastinate==3.10.0", "psycopg[binary,pool]==3.3.9")),
    )
}


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python(minimum: tuple[int, int]) -> str | None:
    """This interpreter when it is new enough, else a ``python3.X`` on PATH or under pyenv."""
    base = getattr(sys, "_base_executable", sys.executable)
    if sys.version_info[:2] >= minimum:
        return base
    candidates: list[str] = []
    for minor in range(minimum[1], minimum[1] + 4):
        name = f"python{minimum[0]}.{minor}"
        if found := shutil.which(name):
            candidates.append(found)
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        candidates += sorted(
            glob.glob(str(pyenv / "versions" / f"{minimum[0]}.{minor}.*/bin/python3"))
        )
    for python in candidates:
        version = _version_of(python)
        if version is not None and version >= minimum:
            return python
    return None


def interpreter(name: str) -> Path:
    return VENVS / name / "bin" / "python"


def _wanted(peer: Peer, python: str) -> str:
    version = _version_of(python)
    return "\n".join([f"python {version}", *peer.pins, *COMMON]) + "\n"


def ensure(name: str, *, force: bool = False, quiet: bool = True) -> str | None:
    """Build ``name``'s venv if it is missing or stale; return why it can't be had, else None."""
    peer = PEERS[name]
    python = find_python(peer.min_python)
    if python is None:
        wanted = ".".join(map(str, peer.min_python))
        return f"needs Python >= {wanted}, none found on PATH or under pyenv ({peer.note})"
    venv = VENVS / name
    stamp = venv / ".pins"
    wanted = _wanted(peer, python)
    if not force and stamp.exists() and stamp.read_text() == wanted and interpreter(name).exists():
        return None
    if venv.exists():
        shutil.rmtree(venv)
    VENVS.mkdir(parents=True, exist_ok=True)
    print(f"venv {name}: creating with {python} ...", flush=True)
    log = VENVS / f"{name}.install.log"
    with log.open("w") as out:
        steps = [
            [python, "-m", "venv", str(venv)],
            [str(interpreter(name)), "-m", "pip", "install", "--upgrade", "pip"],
            [str(interpreter(name)), "-m", "pip", "install", *peer.pins, *COMMON],
        ]
        for cmd in steps:
            out.write("$ " + " ".join(cmd) + "\n")
            out.flush()
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False)
            if done.returncode != 0:
                tail = log.read_text().strip().splitlines()[-3:]
                shutil.rmtree(venv, ignore_errors=True)
                return f"install failed ({' / '.join(tail)}); see {log}"
    stamp.write_text(wanted)
    if not quiet:
        print(f"venv {name}: ready ({', '.join(peer.pins)})", flush=True)
    return None


def freeze(name: str) -> dict[str, str]:
    """Every distribution installed in ``name``'s venv, with its version."""
    python = interpreter(name)
    if not python.exists():
        return {}
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=False,
    )
    pairs = (line.split("==", 1) for line in out.stdout.splitlines() if "==" in line)
    return {k: v for k, v in pairs}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.venvs", description=__doc__.split("\n")[0]
    )
    p.add_argument("--peers", default=",".join(PEERS), help="comma-separated; default: all")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = p.parse_args(argv)
    failed = 0
    for name in [n.strip() for n in args.peers.split(",") if n.strip()]:
        if name not in PEERS:
            print(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
            return 2
        reason = ensure(name, force=args.force, quiet=False)
        if reason is not None:
            failed += 1
            print(f"venv {name}: unavailable: {reason}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
