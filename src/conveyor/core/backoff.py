"""Retry backoff: exponential with full jitter."""

from __future__ import annotations

import random


def full_jitter(attempt: int, base: float = 1.0, cap: float = 3600.0) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    A uniform draw from ``[0, min(cap, base * 2**(attempt-1))]`` (the "full jitter"
    policy): retries of many jobs failing together spread out instead of
    hammering a recovering dependency in waves.
    """
    exponent = min(max(attempt - 1, 0), 62)
    return random.uniform(0.0, min(cap, base * (2.0**exponent)))
