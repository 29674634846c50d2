"""Exercises of notebook 06 (packed codes, popcount top-k)."""
from __future__ import annotations

import numpy as np

from ._common import random_codes


def _check_topk_numpy(fn):
    from ...retrieval.hamming import hamming_topk, pack_codes

    rng = np.random.default_rng(2)
    for bits, k in ((12, 10), (64, 5), (100, 40)):
        q, d = pack_codes(random_codes(rng, 4, bits)), pack_codes(random_codes(rng, 30, bits))
        want = hamming_topk(q, d, k)
        got = fn(q, d, k)
        assert np.array_equal(np.asarray(got[0]), want[0]), f"{bits} bits, k={k}: wrong distances"
        assert np.array_equal(np.asarray(got[1]), want[1]), f"{bits} bits, k={k}: wrong indices (ties by lower index?)"


def _topk_numpy(q_words, db_words, k):
    dist = np.bitwise_count(q_words[:, None, :] ^ db_words[None, :, :]).sum(-1)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, 1), idx


CHECKS = {"06.1": (_check_topk_numpy, "(query words, database words, k) -> (distances, indices) like hamming_topk")}
SOLUTIONS = {"06.1": _topk_numpy}
