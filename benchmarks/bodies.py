"""What every framework's benchmark tasks do, so that all of them do exactly the same work.

Standard library only (see :mod:`benchmarks`): peers' venvs import it too.
"""

from __future__ import annotations

#: iterations of :func:`burn`; about 1 ms of pure Python on a 2020s server core
CPU_ROUNDS = 20_000
#: what an IO task waits (``await asyncio.sleep``; ``time.sleep`` for sync frameworks)
IO_SECONDS = 0.01


def burn(rounds: int = CPU_ROUNDS) -> int:
    """Pure-Python busy work (no C calls to hide in, no allocation)."""
    x = 0
    for k in range(rounds):
        x = (x * 31 + k) % 1_000_003
    return x
