"""Wall-clock timing for notebooks and benchmarks: the best of a few runs."""
from __future__ import annotations

import time


def best_time(fn, repeat: int = 3):
    """Run ``fn()`` ``repeat`` times; return (fastest seconds, last result)."""
    best, out = float("inf"), None
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out
