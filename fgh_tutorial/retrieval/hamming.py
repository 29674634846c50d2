"""Hamming search over packed codes (the layout of ``codes.py``): all distances, compiled top-k,
full ranking, and a torch matmul top-k for comparison. The distance of two codes is

    d_H(b, b') = popcount(w XOR w')  summed over words  =  (c - b.b') / 2.
"""
from __future__ import annotations

import numpy as np

from ..errors import BadOption
from .codes import WORD_BITS, as_sign_array, check_words, pack_codes, unpack_codes

__all__ = ["WORD_BITS", "as_sign_array", "database_columns", "hamming_distances", "hamming_rank", "hamming_topk",
           "hamming_topk_torch", "pack_codes", "unpack_codes"]


def _check_words(words, name):
    return check_words(words, name)


def hamming_distances(query_words, db_words) -> np.ndarray:
    """All pairwise Hamming distances (q x n, uint16) of packed codes."""
    q = _check_words(query_words, "query_words")
    d = _check_words(db_words, "db_words")
    if q.shape[1] != d.shape[1]:
        raise BadOption(f"query and database codes have {q.shape[1]} and {d.shape[1]} words per code")
    out = np.zeros((q.shape[0], d.shape[0]), dtype=np.uint16)
    for w in range(q.shape[1]):
        out += np.bitwise_count(q[:, w, None] ^ d[None, :, w])
    return out


def _pair(query_words, db_words):
    q = _check_words(query_words, "query_words")
    d = _check_words(db_words, "db_words")
    if q.shape[1] != d.shape[1]:
        raise BadOption(f"query and database codes have {q.shape[1]} and {d.shape[1]} words per code")
    return np.ascontiguousarray(q), np.ascontiguousarray(d)


def hamming_topk(query_words, db_words, k: int, db_columns=None):
    """The k nearest database codes of every query.

    Returns ``(distances int32, indices int64)``, both (q x min(k, n)), sorted by distance, ties
    broken by the lower database index. One compiled pass over the database with a threshold
    select (distances are small integers), parallel over blocks of queries. ``db_columns``,
    the database word-major (``database_columns(db_words)``), saves a transpose per call.
    """
    from . import kernels

    q, d = _pair(query_words, db_words)
    if int(k) < 1:
        raise BadOption(f"k must be at least 1, got {k}")
    k = min(int(k), d.shape[0])
    dist = np.empty((q.shape[0], k), dtype=np.int32)
    idx = np.empty((q.shape[0], k), dtype=np.int64)
    if k > 0 and q.shape[0] > 0:
        bits = WORD_BITS * q.shape[1]
        cols = database_columns(d) if db_columns is None else db_columns
        kernels.topk(q, cols, k, bits, dist, idx, _scratch(bits))
    return dist, idx


def _scratch(bits):
    """A dtype carrier for the kernels' distance buffers: uint8 while distances fit."""
    return np.zeros(1, np.uint8 if bits < 256 else np.uint16)


def database_columns(db_words) -> np.ndarray:
    """Packed codes word-major (words x n), C-contiguous: each word of all codes in a row, the
    layout the compiled scan reads with vector loads."""
    return np.ascontiguousarray(_check_words(db_words, "db_words").T)


def hamming_rank(query_words, db_words, out=None) -> np.ndarray:
    """The whole database ranked for every query (q x n indices): a counting sort by distance,
    ties by lower index. Indices are int32 while n < 2^31 (half the memory to write), else
    int64; pass ``out`` (q x n, either type) to reuse one buffer across batches."""
    from . import kernels

    q, d = _pair(query_words, db_words)
    shape = (q.shape[0], d.shape[0])
    if out is None:
        out = np.empty(shape, dtype=np.int32 if d.shape[0] < 2**31 else np.int64)
    elif out.shape != shape or out.dtype not in (np.int32, np.int64):
        raise BadOption(f"out must be an int32 or int64 array of shape {shape}, got {out.dtype} {out.shape}")
    if out.size:
        bits = WORD_BITS * q.shape[1]
        kernels.rank(q, database_columns(d), bits, out, _scratch(bits))
    return out


def hamming_topk_torch(query_codes, db_codes, k: int, chunk: int = 4096, budget: int = 2 << 30):
    """Top-k on a GPU (or CPU) with torch: d_H = (c - q.b) / 2 from one matrix product of +-1
    codes (fp16 on CUDA: exact for c <= 2048), then ``topk`` on the key d * n + index, so ties
    come out by lower index. Codes are +-1 tensors; returns (distances, indices) tensors.
    Queries go in chunks of at most ``chunk``, fewer when their (chunk x n) temporaries (about
    28 bytes per pair) would pass ``budget`` bytes: memory stays bounded for any database size."""
    import torch

    q, d = torch.as_tensor(query_codes), torch.as_tensor(db_codes)
    if q.ndim != 2 or d.ndim != 2 or q.shape[1] != d.shape[1]:
        raise BadOption(f"codes must be (q x c) and (n x c), got {tuple(q.shape)} and {tuple(d.shape)}")
    k = min(int(k), d.shape[0])
    dtype = torch.float16 if d.is_cuda else torch.float32
    q, d = q.to(d.device, dtype), d.to(dtype)
    index = torch.arange(d.shape[0], device=d.device, dtype=torch.int64)
    dists, idxs = [], []
    chunk = max(1, min(int(chunk), int(budget) // (28 * max(1, d.shape[0]))))
    for s in range(0, q.shape[0], chunk):
        ham = ((q.shape[1] - q[s:s + chunk] @ d.T) * 0.5).round().to(torch.int64)
        key = ham * d.shape[0] + index
        top = torch.topk(key, k, dim=1, largest=False, sorted=True).values
        dists.append(top // d.shape[0])
        idxs.append(top % d.shape[0])
    return torch.cat(dists), torch.cat(idxs)
