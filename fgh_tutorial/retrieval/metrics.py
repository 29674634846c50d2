"""Retrieval metrics over Hamming rankings: mAP@all (tie-aware and legacy), mAP@k,
precision@k and the precision-recall curve by Hamming radius.

Codes are +-1 arrays or tensors (n x c). Labels are class ids (n,) or multi-hot rows
(n x L); a database item is relevant to a query when they share a label.

With c bits there are only c + 1 possible distances, so a Hamming ranking is full of ties.
``ties="expected"`` gives the expected value of a metric over all orders of the tied items
(McSherry & Najork's tie-aware measures), computed in closed form from per-distance counts
without sorting. ``ties="stable"`` ranks tied items by their database index, as the usual
reference code does with a stable sort.

``average_precisions`` and ``mean_average_precision`` take ``device``: with "cuda" (or CUDA
tensor codes and no device) the tie-aware histograms are computed on the GPU by the Triton
kernels of ``retrieval.gpu``, equal to the CPU ones, and the closed form below turns them into
the same APs; ``ties="stable"`` always runs on the CPU.
"""
from __future__ import annotations

import numpy as np

from ..errors import BadOption, BadOptionType
from . import kernels
from .hamming import as_sign_array, pack_codes

TIES = ("expected", "stable")


# ---------------------------------------------------------------- inputs
def check_labels(labels, name: str = "labels") -> np.ndarray:
    """Labels as a numpy array: class ids (n,), or multi-hot rows (n x L) with L >= 2. A column
    (n x 1) is read as class ids: one label per row is never multi-hot."""
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    arr = np.asarray(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim not in (1, 2):
        raise BadOption(f"{name} must be class ids (n,) or multi-hot rows (n x L), got shape {arr.shape}")
    if arr.ndim == 2 and arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise BadOptionType(f"{name}: multi-hot rows must be 0/1 numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise BadOption(f"{name} holds NaN or infinite values")
    return arr


_labels = check_labels


def _check(query_codes, db_codes, query_labels, db_labels, ties="expected"):
    if ties not in TIES:
        raise BadOption(f"ties must be one of {TIES}, got {ties!r}")
    qb, db = as_sign_array(query_codes, "query_codes"), as_sign_array(db_codes, "db_codes")
    ql, dl = _labels(query_labels, "query_labels"), _labels(db_labels, "db_labels")
    if qb.shape[1] != db.shape[1]:
        raise BadOption(f"query codes have {qb.shape[1]} bits, database codes {db.shape[1]}")
    if len(ql) != len(qb) or len(dl) != len(db):
        raise BadOption(f"{len(qb)} query codes with {len(ql)} labels, {len(db)} database codes with {len(dl)} labels")
    if ql.ndim != dl.ndim:
        raise BadOption("query and database labels must both be class ids or both multi-hot")
    if len(db) == 0:
        raise BadOption("db_codes is empty: the database needs at least one code")
    if len(qb) == 0:
        raise BadOption("query_codes is empty: give at least one query")
    return qb, db, ql, dl


def _chunks(n_query, n_db, budget=32 << 20):
    step = max(1, budget // max(1, 8 * n_db))
    return [slice(s, min(s + step, n_query)) for s in range(0, n_query, step)]


def _distances(qb, db):
    """d_H = (c - q.b) / 2, exact in float32 for c < 2^24."""
    c = qb.shape[1]
    dots = qb.astype(np.float32) @ db.astype(np.float32).T
    return ((c - dots) * 0.5).astype(np.int32)


def _relevant(ql, dl):
    if ql.ndim == 1:
        return ql[:, None] == dl[None, :]
    return (ql.astype(np.float32) @ dl.astype(np.float32).T) > 0


# ---------------------------------------------------------------- histograms
def distance_histograms(query_codes, db_codes, query_labels, db_labels):
    """Per query and distance d = 0..c: how many database items lie at d, and how many of
    them are relevant. Returns two int64 arrays (q x c+1)."""
    qb, db, ql, dl = _check(query_codes, db_codes, query_labels, db_labels)
    return _histograms(qb, db, ql, dl)


def _class_ids(ql, dl):
    """Single labels of any kind as int64 ids shared by queries and database."""
    _, ids = np.unique(np.concatenate([ql, dl]), return_inverse=True)
    return ids[: len(ql)].astype(np.int64), ids[len(ql):].astype(np.int64)


def _device(device, *arrays):
    """Where the histograms are computed: None for the CPU kernels, else a torch device."""
    if device is None and not any(getattr(a, "is_cuda", False) for a in arrays):
        return None  # decided without importing torch
    from .gpu import device_for

    return device_for(device, *arrays)


def _gpu_histograms(qb, db, ql, dl, device):
    """The histograms by the Triton kernels; multi-hot labels as bits of their positive entries
    (the same relevance as a positive dot product for non-negative labels)."""
    from . import gpu

    ids = _class_ids(ql, dl) if ql.ndim == 1 else (ql, dl)
    (tql, mode), (tdl, _) = (gpu.labels_to_device(x, device) for x in ids)
    words = (gpu.to_device(pack_codes(x), device) for x in (qb, db))
    counts, rel = gpu.distance_histograms(*words, tql, tdl, qb.shape[1], mode)
    return counts.cpu().numpy(), rel.cpu().numpy()


def _histograms(qb, db, ql, dl, device=None):
    c1 = qb.shape[1] + 1
    if device is not None and (ql.ndim == 1 or min(ql.min(initial=0), dl.min(initial=0)) >= 0):
        return _gpu_histograms(qb, db, ql, dl, device)
    if ql.ndim == 1:  # compiled scan over packed codes
        counts = np.zeros((len(qb), c1), np.int64)
        rel = np.zeros((len(qb), c1), np.int64)
        kernels.distance_histograms(pack_codes(qb), pack_codes(db), *_class_ids(ql, dl), counts, rel)
        return counts, rel
    counts = np.zeros((len(qb), c1), np.int64)
    rel = np.zeros((len(qb), c1), np.int64)
    for sl in _chunks(len(qb), len(db)):
        dist = _distances(qb[sl], db)
        key = dist + c1 * np.arange(dist.shape[0], dtype=np.int32)[:, None]
        n_rows = dist.shape[0] * c1
        counts[sl] = np.bincount(key.ravel(), minlength=n_rows).reshape(-1, c1)
        rel[sl] = np.bincount(key[_relevant(ql[sl], dl)], minlength=n_rows).reshape(-1, c1)
    return counts, rel


def _harmonic(n):
    """H[k] = 1 + 1/2 + ... + 1/k, H[0] = 0."""
    return np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])


def expected_ap_from_histograms(counts, rel):
    """Tie-aware AP of every query from its per-distance histograms.

    For a group of n tied items, r of them relevant, with N items and R_b relevant items
    ranked before it, a relevant item at position j+1 of the group has on average
    j(r-1)/(n-1) relevant items before it inside the group, so its expected precision sums to

        sum_{j=0}^{n-1} (R_b + 1 + j b) / (N + 1 + j),   b = (r-1)/(n-1)
          = b n + (R_b + 1 - b (N + 1)) (H[N + n] - H[N]).

    AP = (1/R) sum over groups of (r/n) times that sum.
    """
    counts, rel = np.asarray(counts, np.float64), np.asarray(rel, np.float64)
    before = np.cumsum(counts, 1) - counts
    rel_before = np.cumsum(rel, 1) - rel
    harmonic = _harmonic(int(counts.sum(1).max()))
    b = np.divide(rel - 1, counts - 1, out=np.zeros_like(rel), where=counts > 1)
    hsum = harmonic[(before + counts).astype(np.int64)] - harmonic[before.astype(np.int64)]
    group = b * counts + (rel_before + 1 - b * (before + 1)) * hsum
    contrib = np.divide(rel, counts, out=np.zeros_like(rel), where=counts > 0) * group
    total = rel.sum(1)
    return np.divide(contrib.sum(1), total, out=np.zeros_like(total), where=total > 0)


# ---------------------------------------------------------------- stable ranking
def _stable_rank_relevance(qb, db, ql, dl, k=None):
    """Relevance (q x k) along each query's ranking, ties broken by lower database index."""
    for sl in _chunks(len(qb), len(db)):
        dist = _distances(qb[sl], db).astype(np.uint8 if qb.shape[1] < 256 else np.uint16)
        order = np.argsort(dist, axis=1, kind="stable")  # radix sort for small integers
        if k is not None:
            order = order[:, :k]
        yield sl, np.take_along_axis(_relevant(ql[sl], dl), order, 1)


def _ap_from_ranked(rel_sorted, denominators=None):
    hits = np.cumsum(rel_sorted, 1)
    ranks = np.arange(1, rel_sorted.shape[1] + 1)
    prec_sum = (rel_sorted * hits / ranks).sum(1)
    denom = hits[:, -1] if denominators is None else denominators
    return np.divide(prec_sum, denom, out=np.zeros(len(prec_sum)), where=denom > 0)


# ---------------------------------------------------------------- public metrics
def average_precisions(query_codes, db_codes, query_labels, db_labels, ties="expected", device=None):
    """AP@all of every query (q,), queries with no relevant item score 0. ``device``: None
    (the GPU for CUDA tensor codes, else the CPU), "cpu" or "cuda[:n]" (tie-aware only)."""
    dev = _device(device, query_codes, db_codes)
    qb, db, ql, dl = _check(query_codes, db_codes, query_labels, db_labels, ties)
    if ties == "expected":
        return expected_ap_from_histograms(*_histograms(qb, db, ql, dl, dev))
    out = np.zeros(len(qb))
    if ql.ndim == 1:
        kernels.stable_average_precisions(pack_codes(qb), pack_codes(db), *_class_ids(ql, dl), qb.shape[1], out)
        return out
    for sl, rel in _stable_rank_relevance(qb, db, ql, dl):
        out[sl] = _ap_from_ranked(rel)
    return out


def mean_average_precision(query_codes, db_codes, query_labels, db_labels, ties="expected", device=None) -> float:
    """mAP over the full ranking of the database (mAP@all).

    ``ties="expected"``: tie-aware, the expected AP over random orders within groups of equal
    Hamming distance. ``ties="stable"``: the legacy ranking, ties broken by lower database
    index. The usual reference loops rank with ``np.argsort`` (not stable) and often slice
    ``[:-1]``, dropping the last database item: their numbers can differ in the third decimal.
    ``device``: as in :func:`average_precisions`.
    """
    return float(average_precisions(query_codes, db_codes, query_labels, db_labels, ties, device).mean())


def segment_maps(query_codes, db_codes, query_labels, db_labels, segments, ties="expected") -> list:
    """mAP of each code segment of codes that hold several lengths side by side (12 + 24 + ... bits)."""
    bounds = np.cumsum([0, *segments])
    return [mean_average_precision(query_codes[:, s:e], db_codes[:, s:e], query_labels, db_labels, ties=ties)
            for s, e in zip(bounds[:-1], bounds[1:])]


def map_at_k(query_codes, db_codes, query_labels, db_labels, k: int) -> float:
    """mAP@k with the stable ranking; each AP is normalised by the relevant items found in the
    top k (the convention of the DPSH/ADSH evaluation code)."""
    qb, db, ql, dl = _check(query_codes, db_codes, query_labels, db_labels, "stable")
    _check_k(k)
    out = np.zeros(len(qb))
    for sl, rel in _stable_rank_relevance(qb, db, ql, dl, k):
        out[sl] = _ap_from_ranked(rel)
    return float(out.mean())


def _check_k(k):
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise BadOptionType(f"k must be an integer, got {k!r}")
    if int(k) < 1:
        raise BadOption(f"k must be at least 1, got {k}")


def precision_at_k(query_codes, db_codes, query_labels, db_labels, k: int, ties="expected") -> float:
    """Mean share of relevant items among the first k results (k is capped at the database size).

    Tie-aware: the group that straddles position k contributes (k - N) r / n relevant items.
    """
    qb, db, ql, dl = _check(query_codes, db_codes, query_labels, db_labels, ties)
    _check_k(k)
    k = min(int(k), len(db))
    if ties == "stable":
        hits = np.concatenate([rel.sum(1) for _, rel in _stable_rank_relevance(qb, db, ql, dl, k)])
        return float(hits.mean() / k)
    counts, rel = _histograms(qb, db, ql, dl)
    before = np.cumsum(counts, 1) - counts
    taken = np.clip(k - before, 0, counts)
    share = np.divide(rel, counts, out=np.zeros(rel.shape), where=counts > 0)
    return float((taken * share).sum(1).mean() / k)


def pr_curve(query_codes, db_codes, query_labels, db_labels):
    """Precision and recall within Hamming radius r = 0..c (no ties to break).

    Returns ``(radius, precision, recall)``: precision at r is averaged over the queries that
    retrieve at least one item within r; recall over queries with at least one relevant item.
    """
    qb, db, ql, dl = _check(query_codes, db_codes, query_labels, db_labels)
    counts, rel = _histograms(qb, db, ql, dl)
    found, hits, total = np.cumsum(counts, 1), np.cumsum(rel, 1), rel.sum(1, keepdims=True)
    prec = _masked_mean(np.divide(hits, found, out=np.zeros(found.shape), where=found > 0), found > 0)
    rec = _masked_mean(np.divide(hits, total, out=np.zeros(hits.shape), where=total > 0), total > 0)
    return np.arange(counts.shape[1]), prec, rec


def _masked_mean(values, mask):
    mask = np.broadcast_to(mask, values.shape)
    n = mask.sum(0)
    return np.divide((values * mask).sum(0), n, out=np.full(n.shape, np.nan), where=n > 0)


def map_from_distances(distances, query_labels, db_labels) -> float:
    """mAP@all of any real-valued distances (q x n), e.g. Euclidean distances of float
    features; ties (rare for real values) are broken by lower database index."""
    dist = np.asarray(distances, dtype=np.float64)
    ql, dl = _labels(query_labels, "query_labels"), _labels(db_labels, "db_labels")
    if dist.shape != (len(ql), len(dl)):
        raise BadOption(f"distances must be (queries x database) = {(len(ql), len(dl))}, got {dist.shape}")
    order = np.argsort(dist, axis=1, kind="stable")
    return float(_ap_from_ranked(np.take_along_axis(_relevant(ql, dl), order, 1)).mean())
