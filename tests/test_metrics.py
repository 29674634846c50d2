"""Metrics against brute force on small random cases."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fgh_tutorial.retrieval import metrics


def random_case(seed, n_query=5, n_db=9, bits=4, n_classes=3):
    rng = np.random.default_rng(seed)
    sign = lambda shape: np.where(rng.random(shape) < 0.5, -1, 1)
    return (sign((n_query, bits)), sign((n_db, bits)),
            rng.integers(0, n_classes, n_query), rng.integers(0, n_classes, n_db))


def hamming(q, d):
    return (q[:, None, :] != d[None, :, :]).sum(-1)


def ap_of_order(rel):
    hits, total = 0, 0.0
    for i, r in enumerate(rel, 1):
        if r:
            hits += 1
            total += hits / i
    return total / hits if hits else 0.0


def brute_stable_ap(q, d, ql, dl):
    dist = hamming(q, d)
    return [ap_of_order([ql[i] == dl[j] for j in sorted(range(len(d)), key=lambda j: (dist[i, j], j))])
            for i in range(len(q))]


def brute_expected_ap(q, d, ql, dl):
    """Average AP over every order of the tied items (small cases only)."""
    dist = hamming(q, d)
    out = []
    for i in range(len(q)):
        groups = [[ql[i] == dl[j] for j in range(len(d)) if dist[i, j] == g] for g in sorted(set(dist[i]))]
        perms = [list(itertools.permutations(g)) for g in groups]
        aps = [ap_of_order([r for part in combo for r in part]) for combo in itertools.product(*perms)]
        out.append(np.mean(aps))
    return out


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 7), st.integers(1, 5), st.integers(1, 3))
def test_expected_ap_matches_enumeration(seed, n_query, n_db, bits, n_classes):
    q, d, ql, dl = random_case(seed, n_query, n_db, bits, n_classes)
    got = metrics.average_precisions(q, d, ql, dl, ties="expected")
    np.testing.assert_allclose(got, brute_expected_ap(q, d, ql, dl), atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(1, 40), st.integers(1, 70), st.integers(1, 6))
def test_stable_ap_matches_brute_force(seed, n_query, n_db, bits, n_classes):
    q, d, ql, dl = random_case(seed, n_query, n_db, bits, n_classes)
    got = metrics.average_precisions(q, d, ql, dl, ties="stable")
    np.testing.assert_allclose(got, brute_stable_ap(q, d, ql, dl), atol=1e-12)


def test_expected_ap_large_group_closed_form():
    # one query, 10 items at the same distance, 3 relevant: expected AP = mean over positions
    q = np.ones((1, 8))
    d = np.ones((10, 8))
    dl = np.array([1, 1, 1] + [0] * 7)
    got = metrics.mean_average_precision(q, d, [1], dl)
    # E[AP] for r relevant among n random: (1/r) sum_i E[i / pos_i]; by enumeration of positions
    combos = list(itertools.combinations(range(10), 3))
    want = np.mean([np.mean([(i + 1) / (p + 1) for i, p in enumerate(c)]) for c in combos])
    assert math.isclose(got, want, rel_tol=1e-12)


def test_perfect_and_multilabel():
    q = np.array([[1, 1, -1], [-1, -1, 1]])
    assert metrics.mean_average_precision(q, q, [0, 1], [0, 1]) == 1.0
    ml = np.array([[1, 0], [0, 1]])
    assert metrics.mean_average_precision(q, q, ml, ml, ties="stable") == 1.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 30), st.integers(1, 20))
def test_precision_and_map_at_k(seed, n_db, k):
    q, d, ql, dl = random_case(seed, 4, n_db, 6, 3)
    dist = hamming(q, d)
    kk = min(k, n_db)
    prec, aps, exp_prec = [], [], []
    for i in range(len(q)):
        order = sorted(range(n_db), key=lambda j: (dist[i, j], j))[:kk]
        rel = [ql[i] == dl[j] for j in order]
        prec.append(sum(rel) / kk)
        aps.append(ap_of_order(rel))
        # expected: full groups below the cut, pro rata share of the straddling group
        cut = dist[i, order[-1]]
        below = dist[i] < cut
        at = dist[i] == cut
        share = (ql[i] == dl[at]).mean()
        exp_prec.append(((ql[i] == dl[below]).sum() + (kk - below.sum()) * share) / kk)
    assert math.isclose(metrics.precision_at_k(q, d, ql, dl, k, ties="stable"), np.mean(prec))
    assert math.isclose(metrics.map_at_k(q, d, ql, dl, k), np.mean(aps))
    assert math.isclose(metrics.precision_at_k(q, d, ql, dl, k), np.mean(exp_prec))


def test_pr_curve_endpoints():
    q, d, ql, dl = random_case(3, 20, 50, 8, 4)
    radius, prec, rec = metrics.pr_curve(q, d, ql, dl)
    assert list(radius) == list(range(9))
    has_rel = np.array([(dl == label).any() for label in ql])
    assert math.isclose(rec[-1], 1.0) and np.all(np.diff(rec) >= -1e-12)
    np.testing.assert_allclose(prec[-1], np.mean([(dl == label).mean() for label in ql]))
    assert has_rel.all()


def test_histograms_count_everything():
    q, d, ql, dl = random_case(5, 7, 30, 12, 3)
    counts, rel = metrics.distance_histograms(q, d, ql, dl)
    assert counts.shape == (7, 13) and (counts.sum(1) == 30).all()
    assert (rel.sum(1) == (ql[:, None] == dl[None]).sum(1)).all()


@pytest.mark.parametrize("bad, match", [
    (dict(ties="random"), "ties must be"),
    (dict(query_codes=np.zeros((2, 4))), "only -1 and \\+1"),
    (dict(db_codes=np.ones((3, 5))), "bits"),
    (dict(query_labels=[0]), "labels"),
    (dict(db_codes=np.ones((0, 4)), db_labels=np.array([], int)), "empty"),
    (dict(query_codes=np.ones(4)), "2-D"),
])
def test_bad_input_messages(bad, match):
    args = dict(query_codes=np.ones((2, 4)), db_codes=np.ones((3, 4)), query_labels=[0, 1], db_labels=[0, 1, 1])
    args.update(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        metrics.mean_average_precision(**args)


def test_torch_tensors_accepted():
    torch = pytest.importorskip("torch")
    q, d, ql, dl = random_case(1, 5, 20, 8, 3)
    a = metrics.mean_average_precision(torch.tensor(q, dtype=torch.float32), torch.tensor(d), torch.tensor(ql), dl)
    assert a == metrics.mean_average_precision(q, d, ql, dl)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from(["expected", "stable"]))
def test_multi_hot_path_agrees_with_single_label_path(seed, ties):
    q, d, ql, dl = random_case(seed, 6, 25, 10, 4)
    eye = np.eye(4, dtype=int)
    np.testing.assert_allclose(metrics.average_precisions(q, d, eye[ql], eye[dl], ties),
                               metrics.average_precisions(q, d, ql, dl, ties), atol=1e-12)


def test_string_labels():
    q, d, ql, dl = random_case(2, 6, 25, 10, 3)
    names = np.array(["wren", "tit", "finch"])
    assert metrics.mean_average_precision(q, d, names[ql], names[dl]) == metrics.mean_average_precision(q, d, ql, dl)


def test_map_from_distances_equals_hamming_stable():
    q, d, ql, dl = random_case(9, 6, 30, 10, 3)
    dist = (q[:, None, :] != d[None]).sum(-1).astype(float)
    assert math.isclose(metrics.map_from_distances(dist, ql, dl),
                        metrics.mean_average_precision(q, d, ql, dl, ties="stable"))
    with pytest.raises(ValueError, match="queries x database"):
        metrics.map_from_distances(dist.T, ql, dl)
