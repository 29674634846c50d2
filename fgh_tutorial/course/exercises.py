"""Exercises at the end of each notebook, with checkers and reference solutions.

In a notebook: write your function, then ``check("01.1", my_function)``. It prints ``correct``
or raises an AssertionError that says which case failed. ``SOLUTIONS`` holds one reference
answer per exercise; the test suite checks them, and that wrong answers fail.
"""
from __future__ import annotations

import numpy as np

from ..data.synthetic import CLASSES, NUM_CLASSES, PART_NAMES, attribute_differences


def _random_codes(rng, n, bits):
    return np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8)


def _check_one_part_pairs(fn):
    for part in PART_NAMES:
        want = sorted((a, b) for a in range(NUM_CLASSES) for b in range(a + 1, NUM_CLASSES)
                      if attribute_differences(a, b) == [part])
        got = sorted(tuple(sorted(p)) for p in fn(part))
        assert got == want, f"pairs differing only in the {part}: expected {len(want)} pairs, got {len(got)}"


def _check_hamming_from_dot(fn):
    from ..retrieval.hamming import hamming_distances, pack_codes

    rng = np.random.default_rng(0)
    for bits in (1, 12, 48, 100):
        q, d = _random_codes(rng, 5, bits), _random_codes(rng, 7, bits)
        want = hamming_distances(pack_codes(q), pack_codes(d))
        got = np.asarray(fn(q, d))
        assert got.shape == want.shape, f"{bits} bits: shape {got.shape}, expected {want.shape}"
        assert np.array_equal(got, want), f"{bits} bits: wrong distances"


def _check_ap_one_query(fn):
    from ..retrieval.metrics import average_precisions

    rng = np.random.default_rng(1)
    for _ in range(20):
        q, d = _random_codes(rng, 1, 8), _random_codes(rng, 30, 8)
        ql, dl = rng.integers(0, 3, 1), rng.integers(0, 3, 30)
        want = average_precisions(q, d, ql, dl, ties="stable")[0]
        got = float(fn(q[0], d, ql[0], dl))
        assert abs(got - want) < 1e-9, f"AP {got:.6f}, expected {want:.6f} (ties broken by lower index)"


def _check_topk_numpy(fn):
    from ..retrieval.hamming import hamming_topk, pack_codes

    rng = np.random.default_rng(2)
    for bits, k in ((12, 10), (64, 5), (100, 40)):
        q, d = pack_codes(_random_codes(rng, 4, bits)), pack_codes(_random_codes(rng, 30, bits))
        want = hamming_topk(q, d, k)
        got = fn(q, d, k)
        assert np.array_equal(np.asarray(got[0]), want[0]), f"{bits} bits, k={k}: wrong distances"
        assert np.array_equal(np.asarray(got[1]), want[1]), f"{bits} bits, k={k}: wrong indices (ties by lower index?)"


def _check_cam(fn):
    import torch

    from ..attention.cam import channel_mean_cam

    g = torch.Generator().manual_seed(3)
    for shape, size in (((2, 8, 4, 4), (16, 16)), ((1, 3, 5, 7), (20, 28))):
        fmap = torch.randn(*shape, generator=g)
        want = channel_mean_cam(fmap, size)
        got = torch.as_tensor(fn(fmap, size))
        assert tuple(got.shape) == tuple(want.shape), f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
        assert torch.allclose(got.float(), want, atol=1e-4), "values differ from Eq. 3-4 (bilinear, align_corners=False)"


def _check_erased_fraction(fn):
    import torch

    from ..attention.srem import srem_mask

    g = torch.Generator().manual_seed(4)
    for n, s in ((5, 3), (50, 2), (0, 4)):
        att = torch.rand(3, 16, 16, generator=g)
        want = 1 - srem_mask(att, n, s).mean((1, 2))
        got = torch.as_tensor(fn(att, n, s), dtype=torch.float32)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6), f"{n} regions of {s} px: wrong share"


def _check_exchange(fn):
    import torch

    from ..models.exchnet import exchange

    g = torch.Generator().manual_seed(5)
    for shape in ((3, 4, 5), (1, 2, 7)):
        parts, anchors = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
        mask = torch.rand(shape[:2], generator=g) < 0.5
        got = torch.as_tensor(fn(parts, anchors, mask))
        assert torch.equal(got, exchange(parts, anchors, mask)), "anchors where the mask is true, parts elsewhere"


def _check_ratio(fn):
    import torch

    from ..training.losses import soft_similarity

    g = torch.Generator().manual_seed(6)
    for m, n, k in ((5, 30, 3), (40, 200, 7)):
        ys, yd = torch.randint(0, k, (m,), generator=g), torch.randint(0, k, (n,), generator=g)
        s = soft_similarity(ys, yd)
        same = ys[:, None] == yd[None]
        want = float(same.sum() / (~same).sum())
        got = float(fn(ys, yd))
        assert abs(got - want) < 1e-9, f"r = {got:.6f}, expected {want:.6f}"
        assert torch.allclose(s[~same], torch.tensor(-want))


def _check_expected_precision(fn):
    from ..retrieval.hamming import hamming_distances, pack_codes
    from ..retrieval.metrics import precision_at_k

    rng = np.random.default_rng(3)
    for bits, k in ((4, 10), (8, 10), (12, 5), (12, 60)):
        q, d = _random_codes(rng, 1, bits), _random_codes(rng, 50, bits)
        ql, dl = rng.integers(0, 3, 1), rng.integers(0, 3, 50)
        want = precision_at_k(q, d, ql, dl, k)
        dist = hamming_distances(pack_codes(q), pack_codes(d))[0]
        got = float(fn(dist, dl == ql[0], k))
        assert abs(got - want) < 1e-9, f"{bits} bits, k={k}: expected P@k {want:.6f}, got {got:.6f}"


CHECKS = {
    "00.1": (_check_one_part_pairs, "part -> list of (class a, class b) that differ only in that part"),
    "01.1": (_check_hamming_from_dot, "(query codes q x c, database codes n x c) -> q x n Hamming distances"),
    "01.2": (_check_ap_one_query, "(query code, database codes, query label, database labels) -> stable AP"),
    "02.1": (_check_cam, "(feature maps B x C x h x w, (H, W)) -> B x H x W maps in [0, 1]"),
    "03.1": (_check_erased_fraction, "(attention B x H x W, num_regions, region_size) -> erased share per image"),
    "04.1": (_check_exchange, "(parts B x M x D, anchors B x M x D, mask B x M) -> exchanged parts"),
    "05.1": (_check_ratio, "(sample labels, database labels) -> r = #similar / #dissimilar pairs"),
    "06.1": (_check_topk_numpy, "(query words, database words, k) -> (distances, indices) like hamming_topk"),
    "07.1": (_check_expected_precision, "(distances n, relevant n bool, k) -> tie-aware precision@k of one query"),
}


def check(exercise: str, answer) -> str:
    """Run the checker of ``exercise`` on ``answer``; prints and returns 'correct'."""
    if exercise not in CHECKS:
        raise KeyError(f"no exercise {exercise!r}; there are {sorted(CHECKS)}")
    CHECKS[exercise][0](answer)
    print(f"exercise {exercise}: correct")
    return "correct"


# ---------------------------------------------------------------- reference solutions
def _one_part_pairs(part):
    k = PART_NAMES.index(part)
    return [(a, b) for a in range(NUM_CLASSES) for b in range(a + 1, NUM_CLASSES)
            if sum(x != y for x, y in zip(CLASSES[a], CLASSES[b])) == 1 and CLASSES[a][k] != CLASSES[b][k]]


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


def _topk_numpy(q_words, db_words, k):
    dist = np.bitwise_count(q_words[:, None, :] ^ db_words[None, :, :]).sum(-1)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, 1), idx


def _my_cam(fmap, size):
    import torch.nn.functional as F

    a = F.interpolate(fmap.mean(1, keepdim=True), size=size, mode="bilinear", align_corners=False)[:, 0]
    low, high = a.amin((1, 2), keepdim=True), a.amax((1, 2), keepdim=True)
    return (a - low) / (high - low + 1e-8)


def _erased_fraction(attention, num_regions, region_size):
    from ..attention.srem import srem_mask

    return 1 - srem_mask(attention, num_regions, region_size).mean((1, 2))


def _my_exchange(parts, anchors, mask):
    return parts * ~mask[..., None] + anchors * mask[..., None]


def _ratio(sample_labels, db_labels):
    import torch

    k = int(max(sample_labels.max(), db_labels.max())) + 1
    similar = (torch.bincount(sample_labels, minlength=k) * torch.bincount(db_labels, minlength=k)).sum()
    return float(similar / (len(sample_labels) * len(db_labels) - similar))


def _expected_precision(distances, relevant, k):
    distances, relevant = np.asarray(distances), np.asarray(relevant, bool)
    k = min(k, len(distances))
    edge = np.sort(distances)[k - 1]  # the distance of the group that straddles position k
    closer, tied = distances < edge, distances == edge
    return (relevant[closer].sum() + (k - closer.sum()) * relevant[tied].mean()) / k


SOLUTIONS = {"00.1": _one_part_pairs, "01.1": _hamming_from_dot, "01.2": _ap_one_query, "02.1": _my_cam,
             "03.1": _erased_fraction, "04.1": _my_exchange, "05.1": _ratio, "06.1": _topk_numpy,
             "07.1": _expected_precision}
