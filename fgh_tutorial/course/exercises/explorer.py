"""Exercises of notebook 07 (tie-aware precision of the results shown)."""
from __future__ import annotations

import numpy as np

from ._common import random_codes


def _check_expected_precision(fn):
    from ...retrieval.hamming import hamming_distances, pack_codes
    from ...retrieval.metrics import precision_at_k

    rng = np.random.default_rng(3)
    for bits, k in ((4, 10), (8, 10), (12, 5), (12, 60)):
        q, d = random_codes(rng, 1, bits), random_codes(rng, 50, bits)
        ql, dl = rng.integers(0, 3, 1), rng.integers(0, 3, 50)
        want = precision_at_k(q, d, ql, dl, k)
        dist = hamming_distances(pack_codes(q), pack_codes(d))[0]
        got = float(fn(dist, dl == ql[0], k))
        assert abs(got - want) < 1e-9, f"{bits} bits, k={k}: expected P@k {want:.6f}, got {got:.6f}"


def _expected_precision(distances, relevant, k):
    distances, relevant = np.asarray(distances), np.asarray(relevant, bool)
    k = min(k, len(distances))
    edge = np.sort(distances)[k - 1]  # the distance of the group that straddles position k
    closer, tied = distances < edge, distances == edge
    return (relevant[closer].sum() + (k - closer.sum()) * relevant[tied].mean()) / k


CHECKS = {"07.1": (_check_expected_precision, "(distances n, relevant n bool, k) -> tie-aware precision@k of one query")}
SOLUTIONS = {"07.1": _expected_precision}
