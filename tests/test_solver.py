"""The ADSH V-step against a slow oracle written from the update's definition."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st

from fgh_tutorial.training.solver import update_database_codes


def oracle(V, U, sample_index, db_labels, gamma, similarity):
    """Dense S, U_bar and column-sliced copies, in float64 numpy, as in the official code."""
    V = V.astype(np.float64).copy()
    U = U.astype(np.float64)
    n, c = V.shape
    S = (db_labels[sample_index][:, None] == db_labels[None, :]).astype(np.float64)
    if similarity == "soft":
        r = S.sum() / (1 - S).sum()
        S = S * (1 + r) - r
    else:
        S = 2 * S - 1
    U_bar = np.zeros((n, c))
    U_bar[sample_index] = U
    Q = -2 * c * S.T.dot(U) - 2 * gamma * U_bar
    for k in range(c):
        rest = np.setdiff1d(np.arange(c), k)
        V[:, k] = -np.sign(Q[:, k] + 2 * V[:, rest].dot(U[:, rest].T.dot(U[:, k])))
    return V


def case(seed, n, m, c, classes):
    rng = np.random.default_rng(seed)
    V = np.sign(rng.standard_normal((n, c)))
    U = np.tanh(rng.standard_normal((m, c)))
    index = rng.permutation(n)[:m]
    labels = rng.integers(0, classes, n)
    return V, U, index, labels


@pytest.mark.parametrize("similarity", ["soft", "hard"])
@pytest.mark.parametrize("c", [12, 48])
def test_matches_oracle(similarity, c):
    V, U, index, labels = case(0, 500, 60, c, 7)
    got = update_database_codes(V, U, index, labels, gamma=200.0, similarity=similarity)
    np.testing.assert_array_equal(got.numpy(), oracle(V, U, index, labels, 200.0, similarity))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 80), st.integers(1, 6), st.sampled_from(["soft", "hard"]),
       st.sampled_from([0.0, 1.0, 200.0]))
def test_matches_oracle_random(seed, n, c, similarity, gamma):
    V, U, index, labels = case(seed, n, max(1, n // 3), c, 3)
    # the official soft similarity divides by the number of dissimilar pairs; we define r = 0 there
    assume(similarity == "hard" or (labels[index][:, None] != labels[None]).any())
    got = update_database_codes(torch.tensor(V), torch.tensor(U), index, labels, gamma, similarity)
    np.testing.assert_array_equal(got.numpy(), oracle(V, U, index, labels, gamma, similarity))


def test_string_labels_and_float32():
    V, U, index, labels = case(1, 100, 20, 8, 4)
    names = np.array(["a", "b", "c", "d"])[labels]
    np.testing.assert_array_equal(update_database_codes(V, U, index, labels).numpy(),
                                  update_database_codes(V, U, index, labels.astype(np.int64) + 5).numpy())
    f32 = update_database_codes(V, U, index, labels, dtype=torch.float32)
    assert f32.dtype == torch.float32 and (f32.abs() <= 1).all()
    with pytest.raises(TypeError):
        update_database_codes(V, U, index, names)


def test_errors():
    V, U, index, labels = case(2, 50, 10, 8, 3)
    with pytest.raises(ValueError, match="similarity"):
        update_database_codes(V, U, index, labels, similarity="cosine")
    with pytest.raises(ValueError, match="share c"):
        update_database_codes(V, U[:, :4], index, labels)
    with pytest.raises(ValueError, match="entries for 10 rows"):
        update_database_codes(V, U, index[:5], labels)
    with pytest.raises(ValueError, match="repeat"):
        update_database_codes(V, U, np.r_[index[:9], index[0]], labels)
    with pytest.raises(ValueError, match="entries for 50 database"):
        update_database_codes(V, U, index, labels[:10])


def test_the_step_lowers_the_adsh_objective():
    V, U, index, labels = case(3, 300, 40, 12, 5)

    def objective(V):
        S = (labels[index][:, None] == labels[None]).astype(float)
        r = S.sum() / (1 - S).sum()
        S = S * (1 + r) - r
        return ((U @ V.T - 12 * S) ** 2).sum() + 200 * ((V[index] - U) ** 2).sum()

    assert objective(update_database_codes(V, U, index, labels).numpy()) < objective(V)
