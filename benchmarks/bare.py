"""What two cores can do for the CPU task's body: ``burn()`` in two processes at once.

The CPU scenario's target is a share of this rate. It is measured right before each CPU
run rather than once per ``make bench``: the machine's speed drifts by ±10 % over a
run of the suite (a shared host), and a share is only meaningful against a rate taken
under the same conditions. Standard library only (see :mod:`benchmarks`).
"""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from benchmarks.bodies import burn

#: processes (the 2 cores of the targets)
CORES = 2


def _loop(seconds: float, out: Connection, go: Any) -> None:
    burn()  # warm
    out.send(None)  # ready
    go.wait()  # both start together: neither times a stretch with a core to itself
    done = 0
    started = time.perf_counter()
    deadline = started + seconds
    while (now := time.perf_counter()) < deadline or done == 0:
        burn()
        done += 1
    out.send(done / (now - started))
    out.close()


def two_core_rate(seconds: float = 1.0) -> float:
    """Bodies per second from :data:`CORES` processes each looping ``burn()`` for ``seconds``."""
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    pipes = [ctx.Pipe(duplex=False) for _ in range(CORES)]
    procs = [ctx.Process(target=_loop, args=(seconds, w, go), daemon=True) for _, w in pipes]
    for p in procs:
        p.start()
    try:
        for r, _ in pipes:
            r.recv()  # ready: started, imported, warmed up
        go.set()
        return sum(r.recv() for r, _ in pipes)
    finally:
        for p in procs:
            p.join(10)
