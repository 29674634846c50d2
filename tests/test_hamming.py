"""Packing and Hamming top-k against brute force."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fgh_tutorial.retrieval.hamming import (hamming_distances, hamming_rank, hamming_topk, hamming_topk_torch, pack_codes,
                                  unpack_codes)


def signs(rng, n, bits):
    return np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 20), st.integers(1, 200))
def test_pack_roundtrip_and_distance(seed, n, bits):
    rng = np.random.default_rng(seed)
    a, b = signs(rng, n, bits), signs(rng, 3, bits)
    words = pack_codes(a)
    assert words.dtype == np.uint64 and words.shape == (n, -(-bits // 64))
    np.testing.assert_array_equal(unpack_codes(words, bits), a)
    want = (a[:, None, :] != b[None]).sum(-1)
    np.testing.assert_array_equal(hamming_distances(words, pack_codes(b)), want)


def test_bit_layout():
    code = -np.ones((1, 64), np.int8)
    code[0, [0, 3, 63]] = 1
    assert pack_codes(code)[0, 0] == np.uint64((1 << 0) | (1 << 3) | (1 << 63))


@settings(max_examples=80, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 12), st.integers(0, 60), st.integers(1, 130), st.integers(1, 70))
def test_topk_matches_brute_force_with_ties(seed, n_query, n_db, bits, k):
    rng = np.random.default_rng(seed)
    q, d = signs(rng, n_query, bits), signs(rng, n_db, bits)
    dist, idx = hamming_topk(pack_codes(q), pack_codes(d), k)
    kk = min(k, n_db)
    assert dist.shape == idx.shape == (n_query, kk)
    full = (q[:, None, :] != d[None]).sum(-1)
    for i in range(n_query):
        want = sorted(range(n_db), key=lambda j: (full[i, j], j))[:kk]
        assert list(idx[i]) == want
        assert list(dist[i]) == [full[i, j] for j in want]


def test_bad_inputs():
    with pytest.raises(ValueError, match="only -1 and"):
        pack_codes(np.array([[0, 1]]))
    with pytest.raises(TypeError, match="uint64"):
        hamming_topk(np.ones((2, 1), np.int64), np.ones((2, 1), np.uint64), 1)
    with pytest.raises(ValueError, match="words per code"):
        hamming_topk(np.ones((2, 1), np.uint64), np.ones((2, 2), np.uint64), 1)
    with pytest.raises(ValueError, match="k must be"):
        hamming_topk(np.ones((2, 1), np.uint64), np.ones((2, 1), np.uint64), 0)


def brute_order(q, d):
    full = (q[:, None, :] != d[None]).sum(-1)
    return full, [sorted(range(len(d)), key=lambda j: (full[i, j], j)) for i in range(len(q))]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.integers(0, 6), st.integers(0, 50), st.integers(1, 140))
def test_full_ranking_matches_brute_force(seed, n_query, n_db, bits):
    rng = np.random.default_rng(seed)
    q, d = signs(rng, n_query, bits), signs(rng, n_db, bits)
    ranked = hamming_rank(pack_codes(q), pack_codes(d))
    assert ranked.shape == (n_query, n_db)
    _, want = brute_order(q, d)
    assert [list(r) for r in ranked] == want


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 6), st.integers(1, 50), st.integers(1, 70), st.integers(1, 60))
def test_torch_topk_matches_packed(seed, n_query, n_db, bits, k):
    import torch

    rng = np.random.default_rng(seed)
    q, d = signs(rng, n_query, bits), signs(rng, n_db, bits)
    dist, idx = hamming_topk_torch(torch.tensor(q), torch.tensor(d), k, chunk=2)
    want_d, want_i = hamming_topk(pack_codes(q), pack_codes(d), k)
    assert np.array_equal(dist.numpy(), want_d) and np.array_equal(idx.numpy(), want_i)


def test_empty_database_and_k_above_size():
    q = pack_codes(np.ones((2, 8)))
    dist, idx = hamming_topk(q, pack_codes(np.ones((0, 8))), 5)
    assert dist.shape == idx.shape == (2, 0)
    dist, idx = hamming_topk(q, pack_codes(np.ones((3, 8))), 10)
    assert idx.tolist() == [[0, 1, 2]] * 2 and hamming_rank(q, pack_codes(np.ones((0, 8)))).shape == (2, 0)


def test_kernels_leave_torchs_thread_count_alone():
    """numba's OpenMP launches size the pool torch shares; a search or a metric must not change the
    number of threads training then runs with (its speed, and its float results)."""
    import numba
    import torch

    from fgh_tutorial.retrieval.hamming import hamming_topk
    from fgh_tutorial.retrieval.metrics import mean_average_precision

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs numba to use 2 or more threads")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        codes = np.sign(np.random.default_rng(0).standard_normal((64, 16)))
        labels = np.arange(64) % 4
        mean_average_precision(codes, codes, labels, labels)
        mean_average_precision(codes, codes, labels, labels, ties="stable")
        words = pack_codes(codes)
        hamming_topk(words, words, 5)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
