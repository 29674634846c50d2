"""Exercises of notebook 05 (ADSH's similarity and V-step, FCAENet's ESRL)."""
from __future__ import annotations

import torch

from ...retrieval.codes import hard_sign
from ._common import first_difference, same_shape


def _check_ratio(fn):
    from ...training.losses import soft_similarity

    g = torch.Generator().manual_seed(6)
    for m, n, k in ((5, 30, 3), (40, 200, 7)):
        ys, yd = torch.randint(0, k, (m,), generator=g), torch.randint(0, k, (n,), generator=g)
        s = soft_similarity(ys, yd)
        same = ys[:, None] == yd[None]
        want = float(same.sum() / (~same).sum())
        got = float(fn(ys, yd))
        assert abs(got - want) < 1e-9, f"{m} samples, {n} database points: r = {got:.6f}, expected {want:.6f}"
        assert torch.allclose(s[~same], torch.tensor(-want))


def _bit_by_formula(V, U, Q, k):
    others = torch.arange(V.shape[1]) != k
    return hard_sign(-(Q[:, k] + 2 * V[:, others] @ (U[:, others].T @ U[:, k])))


def _check_v_step_bit(fn):
    from ...training.solver import linear_term, update_database_codes

    g = torch.Generator().manual_seed(8)
    n, m, c, classes = 60, 20, 12, 4
    V = hard_sign(torch.randn(n, c, generator=g, dtype=torch.float64))
    U = torch.tanh(torch.randn(m, c, generator=g, dtype=torch.float64))
    Q = torch.randn(n, c, generator=g, dtype=torch.float64) * 50
    for k in (0, 5, c - 1):  # one bit against Eq. 17
        want = _bit_by_formula(V, U, Q, k)
        got, _ = same_shape(torch.as_tensor(fn(V.clone(), U.clone(), Q.clone(), k)).double(), want, f"bit {k}")
        got = torch.as_tensor(got)
        if torch.equal(got, -want):
            raise AssertionError(f"bit {k}: every sign flipped; the minimiser is sign(-(Q_k + 2 V_k' U_k'^T U_k))")
        if torch.equal(got, hard_sign(-(Q[:, k] + 2 * V @ (U.T @ U[:, k])))):
            raise AssertionError(f"bit {k}: leave bit k itself out of V_k' U_k'^T U_k (the columns other than k)")
        assert torch.equal(got, want), f"bit {k}: {first_difference(got, want)}"
    labels = torch.randint(0, classes, (n,), generator=g)
    index = torch.randperm(n, generator=g)[:m]
    Q = linear_term(U, index, labels, gamma=200.0)
    mine = V.clone()
    for k in range(c):  # the whole V-step: every bit in turn, each with the bits already updated
        mine[:, k] = torch.as_tensor(fn(mine.clone(), U.clone(), Q.clone(), k)).double()
    want = update_database_codes(V, U, index, labels, gamma=200.0)
    bad = (mine != want).any(0).nonzero()
    assert len(bad) == 0, (f"bit after bit, your V differs from update_database_codes first at bit {int(bad[0])} "
                           f"({int((mine != want)[:, bad[0]].sum())} of {n} codes)")


def _check_esrl(fn):
    from ...training.losses import esrl

    g = torch.Generator().manual_seed(9)
    for m, c, alpha, beta in ((8, 12, 1.0, 1.0), (64, 48, 0.5, 2.0)):
        a, p, e = (torch.tanh(torch.randn(m, c, generator=g)) for _ in range(3))
        want, got = float(esrl(a, p, e, alpha, beta)), float(fn(a.clone(), p.clone(), e.clone(), alpha, beta))
        if abs(got - want) <= 1e-5 * max(1.0, abs(want)):
            continue
        only_p = (float(fn(a.clone(), p.clone(), a.clone(), alpha, beta)), float(esrl(a, p, a, alpha, beta)))
        only_e = (float(fn(a.clone(), a.clone(), e.clone(), alpha, beta)), float(esrl(a, a, e, alpha, beta)))
        wrong = [name for name, (x, y) in (("alpha ||u_a - u_p||^2 (Eq. 7)", only_p), ("beta ||u_a - u_e||^2 (Eq. 8)", only_e))
                 if abs(x - y) > 1e-5 * max(1.0, abs(y))]
        ratio = got / want if want else float("nan")
        raise AssertionError(f"m={m} triplets of {c} bits, alpha={alpha}, beta={beta}: ESRL {got:.6g}, expected {want:.6g} "
                             f"(yours is {ratio:.3g} times the library's; Eq. 9 divides the sum over the m triplets by m c). "
                             f"The term(s) that differ: {', '.join(wrong) or 'neither alone: check how they add up'}")


# ---------------------------------------------------------------- reference solutions
def _ratio(sample_labels, db_labels):
    k = int(max(sample_labels.max(), db_labels.max())) + 1
    similar = (torch.bincount(sample_labels, minlength=k) * torch.bincount(db_labels, minlength=k)).sum()
    return float(similar / (len(sample_labels) * len(db_labels) - similar))


def _v_step_bit(V, U, Q, k):
    rest = [j for j in range(V.shape[1]) if j != k]
    x = Q[:, k] + 2 * V[:, rest] @ (U[:, rest].T @ U[:, k])
    return torch.where(x > 0, -1.0, 1.0).to(V.dtype)  # sign(-x) with sign(0) := +1


def _esrl(u_a, u_p, u_e, alpha, beta):
    m, c = u_a.shape
    return (alpha * (u_a - u_p).pow(2).sum() + beta * (u_a - u_e).pow(2).sum()) / (m * c)


CHECKS = {
    "05.1": (_check_ratio, "(sample labels, database labels) -> r = #similar / #dissimilar pairs"),
    "05.2": (_check_v_step_bit, "(V n x c, U m x c, Q n x c, bit k) -> the new column k of V (Eq. 17)"),
    "05.3": (_check_esrl, "(u_anchor, u_positive, u_erased m x c, alpha, beta) -> ESRL (Eq. 7-9)"),
}
SOLUTIONS = {"05.1": _ratio, "05.2": _v_step_bit, "05.3": _esrl}
