import numpy as np
import pytest
import torch

from fgh_tutorial.attention.srem import srem_mask
from fgh_tutorial.course.exercises import CHECKS, SOLUTIONS, check


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_reference_solutions_pass(name):
    assert check(name, SOLUTIONS[name]) == "correct"


def _legacy_ap(dist, rel):
    rel = np.asarray(rel)[np.argsort(dist, kind="stable")]
    return float(np.mean(np.cumsum(rel)[rel] / (np.flatnonzero(rel) + 1))) if rel.any() else 0.0


def _srem_cells_unpadded(att, n, s):  # drops the partial cells at the border: no padding
    b, h, w = att.shape
    return SOLUTIONS["03.1"](att[:, : h // s * s, : w // s * s], n, s) if h >= s else att


def _unpaired(a, b):
    a, b = np.asarray(a), np.asarray(b)
    half = 2.306 * np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return a.mean() - b.mean(), a.mean() - b.mean() - half, a.mean() - b.mean() + half


def _paired_z(a, b):
    d = np.asarray(a) - np.asarray(b)
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    return d.mean(), d.mean() - half, d.mean() + half


@pytest.mark.parametrize("name, wrong, message", [
    ("00.1", lambda part: [], "pairs differing only in the beak"),
    ("01.1", lambda q, d: np.asarray(q) @ np.asarray(d).T, "wrong distances"),
    ("01.1", lambda q, d: (np.asarray(q).shape[1] + np.asarray(q, np.int64) @ np.asarray(d, np.int64).T) // 2, "equal bits"),
    ("01.2", lambda q, d, ql, dl: 0.5, "ties broken by lower index"),
    ("01.3", _legacy_ap, "legacy AP"),
    ("01.3", lambda dist, rel: np.mean(rel), "tie-aware AP"),
    ("02.1", lambda fmap, size: fmap.mean(1), "shape"),
    ("03.1", lambda att, n, s: 1 - srem_mask(att, n, s), "inverted"),
    ("03.1", lambda att, n, s: srem_mask(att, n, s, mode="anchors"), "anchors"),
    ("03.1", lambda att, n, s: torch.nn.functional.pad(_srem_cells_unpadded(att, n, s),
                                                        (0, att.shape[2] % s, 0, att.shape[1] % s), value=1.0), "pad with zeros"),
    ("03.1", lambda att, n, s: srem_mask(att.flip(1), n, s).flip(1), "top-left"),
    ("03.1", lambda att, n, s: srem_mask(att, max(n - 1, 0), s), "exactly num_regions"),
    ("04.1", lambda parts, anchors, mask: parts, "anchors where"),
    ("05.1", lambda ys, yd: 1.0, "expected"),
    ("05.2", lambda V, U, Q, k: -SOLUTIONS["05.2"](V, U, Q, k), "flipped"),
    ("05.2", lambda V, U, Q, k: torch.where(Q[:, k] + 2 * V @ (U.T @ U[:, k]) > 0, -1.0, 1.0).double(), "leave bit k"),
    ("05.2", lambda V, U, Q, k: torch.where(Q[:, k] > 0, -1.0, 1.0).double(), "bit 0"),
    ("05.3", lambda a, p, e, al, be: (al * (a - p).pow(2).sum() + be * (a - e).pow(2).sum()) / len(a), "m c"),
    ("05.3", lambda a, p, e, al, be: al * (a - p).pow(2).sum() / a.numel(), "Eq. 8"),
    ("06.1", lambda q, d, k: (np.zeros((len(q), k)), np.zeros((len(q), k))), "distances"),
    ("07.1", lambda dist, rel, k: rel[np.argsort(dist, kind="stable")[:k]].mean(), "expected P@k"),
    ("08.1", lambda codes: SOLUTIONS["08.1"](codes) * np.log(2), "log base 2"),
    ("08.1", lambda codes: -((np.asarray(codes) > 0).mean(0) * np.log2((np.asarray(codes) > 0).mean(0))), "expected"),
    ("08.2", lambda rel, i, j: abs(SOLUTIONS["08.2"](rel, i, j) * np.sum(rel)), "number of relevant"),
    ("09.1", lambda a, b: (np.mean(b) - np.mean(a), 0, 1), "A - B"),
    ("09.1", lambda a, b: _unpaired(a, b), "unpaired"),
    ("09.1", lambda a, b: _paired_z(a, b), "t quantile"),
])
def test_wrong_answers_fail_with_a_message(name, wrong, message):
    with pytest.raises(AssertionError, match=message):
        check(name, wrong)


def test_unknown_exercise():
    with pytest.raises(KeyError, match="no exercise"):
        check("99.9", SOLUTIONS["01.1"])
