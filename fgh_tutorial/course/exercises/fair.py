"""Exercises of notebook 09 (the seed-paired yardstick)."""
from __future__ import annotations

import numpy as np


def _runs(a, b):
    return {"runs": [{"setting": {"arm": arm}, "seed": s, "result": {"m": float(v)}}
                     for arm, values in (("a", a), ("b", b)) for s, v in enumerate(values)]}


def _check_paired(fn):
    from ..sweeps import paired

    rng = np.random.default_rng(9)
    for n in (5, 8):
        base = rng.uniform(0.3, 0.5, n)  # a seed effect shared by both arms
        a, b = base + rng.normal(0.02, 0.01, n), base + rng.normal(0.0, 0.01, n)
        want = paired(_runs(a, b), "m", {"arm": "a"}, {"arm": "b"})
        got = tuple(float(x) for x in fn(list(a), list(b)))
        if len(got) != 3:
            raise AssertionError("return (mean difference, low, high)")
        if abs(got[0] - want["mean"]) > 1e-9:
            raise AssertionError(f"{n} seeds: mean difference {got[0]:.6f}, expected {want['mean']:.6f} (A - B, seed by seed)")
        welch = 2.306 * np.sqrt(a.var(ddof=1) / n + b.var(ddof=1) / n)
        if abs((got[2] - got[0]) - welch) < abs((got[2] - got[0]) - (want["high"] - want["mean"])):
            raise AssertionError("that is the unpaired interval: take the differences seed by seed first, then "
                                 "their standard deviation (the seed effect cancels)")
        if abs(got[1] - want["low"]) > 1e-6 or abs(got[2] - want["high"]) > 1e-6:
            raise AssertionError(f"{n} seeds: interval [{got[1]:.6f}, {got[2]:.6f}], expected [{want['low']:.6f}, "
                                 f"{want['high']:.6f}] (t quantile 0.975 with n - 1 degrees of freedom, sd with n - 1)")


def _my_paired(a, b):
    from scipy import stats

    d = np.asarray(a) - np.asarray(b)
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


CHECKS = {"09.1": (_check_paired, "(values of A per seed, values of B per seed) -> (mean, low, high)")}
SOLUTIONS = {"09.1": _my_paired}
