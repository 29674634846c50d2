"""Exercises of notebook 08 (a tour of deep hashing designs): bit balance, and the order-aware
weight of one triplet."""
from __future__ import annotations

import numpy as np

from ._common import as_numpy, first_difference, random_codes, same_shape


def _check_bit_entropies(fn):
    from ...retrieval.balance import bit_entropies

    rng = np.random.default_rng(8)
    for n, bits in ((10, 6), (33, 12), (1, 4)):
        codes = random_codes(rng, n, bits)
        codes[:, 0] = 1  # a constant bit: entropy 0, not nan
        got, want = same_shape(fn(codes), bit_entropies(codes), f"{n} codes of {bits} bits")
        if np.isnan(got.astype(np.float64)).any():
            raise AssertionError(f"{n} codes of {bits} bits: nan for a constant bit (0 log 0 counts as 0)")
        if not np.allclose(got, want, atol=1e-9):
            hint = " (entropy in bits: log base 2)" if np.allclose(got, want * np.log(2), atol=1e-9) else ""
            raise AssertionError(f"{n} codes of {bits} bits: {first_difference(got, want, 1e-9)}{hint}")


def _ap(rel):
    rel = np.asarray(rel, bool)
    hits = np.cumsum(rel)
    return float(np.mean(hits[rel] / (np.flatnonzero(rel) + 1))) if rel.any() else 0.0


def _brute_swap(relevant, i, j):
    rel = np.asarray(relevant, bool).copy()
    base = _ap(rel)
    rel[i - 1], rel[j - 1] = rel[j - 1], rel[i - 1]
    return abs(_ap(rel) - base)


def _check_swap_weight(fn):
    rng = np.random.default_rng(9)
    for _ in range(40):
        n = int(rng.integers(3, 15))
        relevant = rng.random(n) < 0.4
        relevant[rng.integers(n)] = True
        relevant[rng.integers(n)] = False
        if relevant.all() or not relevant.any():
            continue
        i = int(rng.choice(np.flatnonzero(relevant))) + 1
        j = int(rng.choice(np.flatnonzero(~relevant))) + 1
        want, got = _brute_swap(relevant, i, j), float(as_numpy(fn(relevant.copy(), i, j)))
        if abs(got - want) > 1e-9:
            ranking = "".join("+" if r else "-" for r in relevant)
            raise AssertionError(f"ranking {ranking}, positive at {i}, negative at {j}: yours {got:.6f}, "
                                 f"expected |Delta AP| = {want:.6f} (positions are 1-based; AP divides by the "
                                 "number of relevant items)")


def _bit_entropies(codes):
    q = (np.asarray(codes) > 0).mean(0)
    out = np.zeros_like(q, dtype=np.float64)
    mid = (q > 0) & (q < 1)
    out[mid] = -(q[mid] * np.log2(q[mid]) + (1 - q[mid]) * np.log2(1 - q[mid]))
    return out


def _swap_weight(relevant, i, j):
    rel = np.asarray(relevant, bool)
    hits = np.cumsum(rel)
    q = np.cumsum(rel / np.arange(1, len(rel) + 1))
    H = lambda k: hits[k - 1] if k > 0 else 0  # noqa: E731
    Q = lambda k: q[k - 1] if k > 0 else 0.0  # noqa: E731
    if i < j:
        delta = H(j) / j - H(i) / i - (Q(j - 1) - Q(i))
    else:
        delta = (H(j) + 1) / j - H(i) / i + (Q(i - 1) - Q(j))
    return abs(delta) / rel.sum()


CHECKS = {
    "08.1": (_check_bit_entropies, "(+-1 codes n x c) -> entropy in bits of each bit's share of +1 (c,)"),
    "08.2": (_check_swap_weight,
             "(relevance in ranked order, position i of a positive, j of a negative) -> |Delta AP|"),
}
SOLUTIONS = {"08.1": _bit_entropies, "08.2": _swap_weight}
