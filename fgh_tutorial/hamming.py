"""Packed binary codes and Hamming search.

A c-bit code b in {-1, +1}^c is stored as ceil(c / 64) uint64 words: bit j of the code is
bit (j mod 64) of word j // 64, set where b_j = +1. The Hamming distance of two codes is

    d_H(b, b') = popcount(w XOR w')  summed over words  =  (c - b.b') / 2.
"""
from __future__ import annotations

import numpy as np

WORD_BITS = 64


def as_sign_array(codes, name: str = "codes") -> np.ndarray:
    """``codes`` (numpy array or torch tensor, n x c) as an int8 numpy array of +-1 values."""
    if hasattr(codes, "detach"):
        codes = codes.detach().cpu().numpy()
    arr = np.asarray(codes)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n x bits), got shape {arr.shape}")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold the numbers -1 and +1, got dtype {arr.dtype}")
    if arr.size and not np.isin(arr, (-1, 1)).all():
        bad = arr[~np.isin(arr, (-1, 1))].ravel()[:3]
        raise ValueError(f"{name} must hold only -1 and +1 (use fgh_tutorial.heads.binarize), found {bad}")
    return arr.astype(np.int8, copy=False)


def pack_codes(codes) -> np.ndarray:
    """Pack +-1 codes (n x c) into uint64 words (n x ceil(c/64))."""
    signs = as_sign_array(codes)
    n, c = signs.shape
    words = -(-c // WORD_BITS)
    bits = np.zeros((n, words * WORD_BITS), dtype=np.uint8)
    bits[:, :c] = signs > 0
    # little-endian bit order inside each byte, bytes in little-endian word order
    packed = np.packbits(bits.reshape(n, words, 8, 8), axis=-1, bitorder="little")
    return np.ascontiguousarray(packed.reshape(n, words * 8)).view("<u8").astype(np.uint64, copy=False)


def unpack_codes(words, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_codes`: uint64 words (n x w) -> +-1 int8 codes (n x bits)."""
    words = _check_words(words, "words")
    n = words.shape[0]
    raw = np.ascontiguousarray(words.astype("<u8")).view(np.uint8).reshape(n, 8 * words.shape[1])
    b = np.unpackbits(raw, axis=1, bitorder="little")[:, :bits]
    return (2 * b.astype(np.int8) - 1).astype(np.int8)


def _check_words(words, name: str) -> np.ndarray:
    if hasattr(words, "detach"):
        words = words.detach().cpu().numpy()
    arr = np.asarray(words)
    if arr.dtype != np.uint64:
        raise TypeError(f"{name} must be uint64 words from pack_codes, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n x words), got shape {arr.shape}")
    return arr


def hamming_distances(query_words, db_words) -> np.ndarray:
    """All pairwise Hamming distances (q x n, uint16) of packed codes."""
    q = _check_words(query_words, "query_words")
    d = _check_words(db_words, "db_words")
    if q.shape[1] != d.shape[1]:
        raise ValueError(f"query and database codes have {q.shape[1]} and {d.shape[1]} words per code")
    out = np.zeros((q.shape[0], d.shape[0]), dtype=np.uint16)
    for w in range(q.shape[1]):
        out += np.bitwise_count(q[:, w, None] ^ d[None, :, w])
    return out


def _chunk_rows(n_db: int, budget_bytes: int = 64 << 20) -> int:
    return max(1, budget_bytes // max(1, 8 * n_db))


def hamming_topk(query_words, db_words, k: int, chunk: int | None = None):
    """The k nearest database codes of every query.

    Returns ``(distances, indices)``, both (q x min(k, n)), sorted by distance, ties broken by
    the lower database index. Memory is bounded by scanning the queries in chunks.
    """
    q = _check_words(query_words, "query_words")
    d = _check_words(db_words, "db_words")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, d.shape[0])
    dist_out = np.empty((q.shape[0], k), dtype=np.int32)
    idx_out = np.empty((q.shape[0], k), dtype=np.int64)
    if k == 0:
        return dist_out, idx_out
    step = chunk or _chunk_rows(d.shape[0])
    order = np.arange(d.shape[0], dtype=np.int64)
    for s in range(0, q.shape[0], step):
        dist = hamming_distances(q[s:s + step], d).astype(np.int64)
        key = dist * d.shape[0] + order  # distance first, then index: a strict total order
        part = np.argpartition(key, k - 1, axis=1)[:, :k] if k < d.shape[0] else np.tile(order, (len(key), 1))
        part_keys = np.take_along_axis(key, part, 1)
        top = np.take_along_axis(part, np.argsort(part_keys, axis=1), 1)
        idx_out[s:s + step] = top
        dist_out[s:s + step] = np.take_along_axis(dist, top, 1)
    return dist_out, idx_out
