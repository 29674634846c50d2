"""Exercises of notebook 01 (Hamming distance, legacy and tie-aware AP)."""
from __future__ import annotations

import numpy as np

from ._common import first_difference, random_codes, same_shape


def _check_hamming_from_dot(fn):
    from ...retrieval.hamming import hamming_distances, pack_codes

    rng = np.random.default_rng(0)
    for bits in (1, 12, 48, 100):
        q, d = random_codes(rng, 5, bits), random_codes(rng, 7, bits)
        want = hamming_distances(pack_codes(q), pack_codes(d))
        got, want = same_shape(fn(q, d), want, f"{bits} bits")
        if np.array_equal(got, bits - want):
            raise AssertionError(f"{bits} bits: you count equal bits; the distance counts the bits that differ")
        assert np.array_equal(got, want), f"{bits} bits: wrong distances {first_difference(got, want)}"


def _check_ap_one_query(fn):
    from ...retrieval.metrics import average_precisions

    rng = np.random.default_rng(1)
    for _ in range(20):
        q, d = random_codes(rng, 1, 8), random_codes(rng, 30, 8)
        ql, dl = rng.integers(0, 3, 1), rng.integers(0, 3, 30)
        want = average_precisions(q, d, ql, dl, ties="stable")[0]
        got = float(fn(q[0], d, ql[0], dl))
        assert abs(got - want) < 1e-9, f"AP {got:.6f}, expected {want:.6f} (ties broken by lower index)"


def _groups(distances, relevant) -> str:
    """'d=2: 5 items (3 relevant), d=3: ...' for the first groups of a ranking."""
    out = []
    for d in np.unique(distances)[:5]:
        at = distances == d
        out.append(f"d={d}: {int(at.sum())} items ({int(relevant[at].sum())} relevant)")
    return ", ".join(out)


def _check_tie_aware_ap(fn):
    from ...retrieval.hamming import hamming_distances, pack_codes
    from ...retrieval.metrics import average_precisions

    rng = np.random.default_rng(7)
    cases = [(bits, n) for bits in (4, 6, 12) for n in (40, 300)] + [(8, 60)] * 4
    for bits, n in cases:
        q, d = random_codes(rng, 1, bits), random_codes(rng, n, bits)
        ql, dl = rng.integers(0, 4, 1), rng.integers(0, 4, n)
        dist = hamming_distances(pack_codes(q), pack_codes(d))[0]
        rel = dl == ql[0]
        want = average_precisions(q, d, ql, dl, ties="expected")[0]
        legacy = average_precisions(q, d, ql, dl, ties="stable")[0]
        got = float(fn(dist.copy(), rel.copy()))
        if abs(got - want) < 1e-9:
            continue
        hint = ""
        if abs(got - legacy) < 1e-9:
            hint = " That is the legacy AP: you broke the ties by database order instead of averaging over them."
        elif abs(got - want) < 0.02:
            hint = " Close: a sampled estimate? The expectation has a closed form per group (Eq. above)."
        raise AssertionError(f"{bits} bits, {n} database items: tie-aware AP {got:.6f}, expected {want:.6f}."
                             f"{hint} The ranking's first groups: {_groups(dist, rel)}")
    got = float(fn(np.array([1, 2, 3]), np.zeros(3, bool)))
    assert got == 0.0, f"a query with no relevant item should score 0, got {got}"


# ---------------------------------------------------------------- reference solutions
def _hamming_from_dot(q, d):
    q, d = np.asarray(q, np.int64), np.asarray(d, np.int64)
    return (q.shape[1] - q @ d.T) // 2


def _ap_one_query(q, d, ql, dl):
    dist = (len(q) - np.asarray(d, np.int64) @ np.asarray(q, np.int64)) // 2
    rel = (np.asarray(dl) == ql)[np.argsort(dist, kind="stable")]
    if not rel.any():
        return 0.0
    hits = np.cumsum(rel)
    return float(np.mean(hits[rel] / (np.flatnonzero(rel) + 1)))


def _tie_aware_ap(distances, relevant):
    distances, relevant = np.asarray(distances), np.asarray(relevant, bool)
    total = relevant.sum()
    if total == 0:
        return 0.0
    ap, before, rel_before = 0.0, 0, 0
    for d in np.unique(distances):  # groups of equal distance, nearest first
        n, r = int((distances == d).sum()), int(relevant[distances == d].sum())
        b = (r - 1) / (n - 1) if n > 1 else 0.0  # expected relevant items before the j-th one of the group
        ap += r / n * sum((rel_before + 1 + j * b) / (before + 1 + j) for j in range(n))
        before, rel_before = before + n, rel_before + r
    return ap / total


CHECKS = {
    "01.1": (_check_hamming_from_dot, "(query codes q x c, database codes n x c) -> q x n Hamming distances"),
    "01.2": (_check_ap_one_query, "(query code, database codes, query label, database labels) -> stable AP"),
    "01.3": (_check_tie_aware_ap, "(distances n, relevant n bool) -> tie-aware AP of one query"),
}
SOLUTIONS = {"01.1": _hamming_from_dot, "01.2": _ap_one_query, "01.3": _tie_aware_ap}
