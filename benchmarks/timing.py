"""The completion table: one ``float64`` slot per job, shared by every process of a run.

Task ``i`` stores ``time.perf_counter()`` in slot ``i`` when it finishes. On Linux
``perf_counter`` reads ``CLOCK_MONOTONIC``, which is system-wide, so stamps written
by process-pool children compare with the worker's own. The table is a plain
file mapped with :mod:`mmap` (no ``multiprocessing.shared_memory``: its resource
tracker would unlink the segment when a pool child exits). Writing a slot costs
one float store, the same for every scenario and every framework, and nothing
polls the broker.

Standard library only (see :mod:`benchmarks`).
"""

from __future__ import annotations

import mmap
import os
import time
from array import array
from pathlib import Path

ENV = "CONVEYOR_BENCH_TABLE"
_SLOT = 8

_view: memoryview | None = None


class CompletionTable:
    """A zero-filled table of ``n`` float64 timestamps backed by ``path``."""

    def __init__(self, path: Path, n: int, *, create: bool = False) -> None:
        self.path = path
        self.n = n
        if create:
            with path.open("wb") as f:
                f.truncate(n * _SLOT)
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, n * _SLOT)
        finally:
            os.close(fd)
        self.view = memoryview(self._map).cast("d")

    @classmethod
    def create(cls, path: Path, n: int) -> CompletionTable:
        table = cls(path, n, create=True)
        table.install()
        return table

    def install(self) -> None:
        """Make :func:`record` write here, in this process and in children started later."""
        global _view
        os.environ[ENV] = f"{self.path}:{self.n}"
        _view = self.view

    def snapshot(self) -> array[float]:
        return array("d", self.view.tobytes())

    def count(self) -> int:
        return sum(1 for t in self.view if t)

    def close(self) -> None:
        global _view
        if _view is self.view:
            _view = None
        self.view.release()
        self._map.close()


def _attach() -> memoryview:
    global _view
    spec = os.environ.get(ENV)
    if not spec:
        raise RuntimeError(f"no completion table: {ENV} is not set")
    path, _, n = spec.rpartition(":")
    table = CompletionTable(Path(path), int(n))
    _view = table.view
    return _view


def record(i: int) -> None:
    """Mark job ``i`` finished now."""
    view = _view if _view is not None else _attach()
    view[i] = time.perf_counter()
