"""Compiled scan kernels (numba) over packed uint64 codes and single-label data.

One pass per query over the database: d = popcount(q XOR b) summed over words, then
per-distance counts, or the stable-order AP. Parallel over queries.

numba's OpenMP threading layer shares the process's OpenMP pool with torch and sizes it on every
parallel launch, so a search or a metric would change the number of threads torch trains with (its
speed, and through the order of float sums its results). Every parallel kernel below is therefore
wrapped by ``_keeping_torch_threads``, which puts torch's thread count back after the call.
"""
from __future__ import annotations

import functools
import sys

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic


@intrinsic
def popcount64(typingctx, x):
    """LLVM's ctpop on a uint64: one popcnt instruction on x86-64 and arm64."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)

    return types.uint64(types.uint64), codegen


def _keeping_torch_threads(kernel):
    """``kernel`` that leaves ``torch.get_num_threads()`` as it found it (see the module docstring)."""
    @functools.wraps(kernel)
    def call(*args, **kwargs):
        torch = sys.modules.get("torch")  # nothing to keep if torch was never imported
        threads = torch.get_num_threads() if torch else None
        try:
            return kernel(*args, **kwargs)
        finally:
            if threads is not None and torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
    return call


@njit(cache=True, inline="always")
def _popdist(qw, dw, i, j):
    d = 0
    for w in range(qw.shape[1]):
        d += np.int64(popcount64(qw[i, w] ^ dw[j, w]))
    return d


@_keeping_torch_threads
@njit(cache=True, parallel=True)
def distance_histograms(qw, dw, ql, dl, counts, rel):
    """counts[i, d] = #{j : d_H(i, j) = d}; rel[i, d] = the same among j with dl[j] == ql[i]."""
    for i in prange(qw.shape[0]):
        for j in range(dw.shape[0]):
            d = _popdist(qw, dw, i, j)
            counts[i, d] += 1
            if dl[j] == ql[i]:
                rel[i, d] += 1


@_keeping_torch_threads
@njit(cache=True, parallel=True)
def stable_average_precisions(qw, dw, ql, dl, bits, out):
    """AP of every query along the ranking sorted by distance, ties by lower database index.

    A relevant item j at distance d has rank N_d + s + 1 and hits R_d + r + 1, where N_d, R_d
    count the items (relevant items) at smaller distances and s, r the items (relevant items)
    at distance d with a lower index: a counting sort without moving anything.
    """
    for i in prange(qw.shape[0]):
        dist = np.empty(dw.shape[0], np.int64)
        counts = np.zeros(bits + 2, np.int64)
        rel = np.zeros(bits + 2, np.int64)
        for j in range(dw.shape[0]):
            d = _popdist(qw, dw, i, j)
            dist[j] = d
            counts[d + 1] += 1
            if dl[j] == ql[i]:
                rel[d + 1] += 1
        total = 0
        for d in range(1, bits + 2):
            total += rel[d]
            counts[d] += counts[d - 1]
            rel[d] += rel[d - 1]
        if total == 0:
            out[i] = 0.0
            continue
        acc = 0.0
        for j in range(dw.shape[0]):
            d = dist[j]
            rank = counts[d] + 1
            counts[d] += 1
            if dl[j] == ql[i]:
                rel[d] += 1
                acc += rel[d] / rank
        out[i] = acc / total


@njit(cache=True)
def _scan(qw, dw, i, dist, hist):
    for j in range(dw.shape[0]):
        d = _popdist(qw, dw, i, j)
        dist[j] = d
        hist[d] += 1


@njit(cache=True)
def _compact(cd, cj, n, k, bits):
    """Keep the best k of the first n candidates by (distance, index) in place, in index
    order; return (new count, threshold t): from now on only d < t can enter."""
    hist = np.zeros(bits + 2, np.int64)
    for c in range(n):
        hist[cd[c]] += 1
    t, below = 0, 0
    while below + hist[t] < k:
        below += hist[t]
        t += 1
    room = k - below  # how many of the items at distance t survive: the lowest indices
    m = 0
    for c in range(n):
        d = cd[c]
        if d < t or (d == t and room > 0):
            if d == t:
                room -= 1
            cd[m] = d
            cj[m] = cj[c]
            m += 1
    return m, t


@njit(cache=True, inline="always")
def _block_distances(qw, cols, i, s, e, buf, t):
    """buf[x] = d_H(query i, code s + x) from the word-major database ``cols`` (words x n);
    returns how many are below t. Branch-free loops over contiguous words, which LLVM
    vectorises (popcount and compare on whole vector registers)."""
    cast = np.empty(1, buf.dtype)  # compare in the buffer's own narrow type
    cast[0] = min(t, 255 if buf.itemsize == 1 else 65535)
    tb = cast[0]
    last = qw.shape[1] - 1
    for w in range(last):
        q, col = qw[i, w], cols[w, s:e]
        for x in range(e - s):
            if w == 0:
                buf[x] = popcount64(q ^ col[x])
            else:
                buf[x] += popcount64(q ^ col[x])
    q, col = qw[i, last], cols[last, s:e]
    below = 0
    for x in range(e - s):
        v = popcount64(q ^ col[x]) + (buf[x] if last > 0 else 0)
        buf[x] = v
        below += np.uint32(buf[x] < tb)
    return below


@_keeping_torch_threads
@njit(cache=True, parallel=True)
def topk(qw, cols, k, bits, out_dist, out_idx, scratch_dtype, query_block=16, db_block=4096):
    """The k nearest codes of each query, by (distance, index), in one pass.

    Queries are processed in blocks against cache-sized blocks of the database. For each
    block the distances are computed branch-free, with a count of those below the query's
    threshold t; only when that count is non-zero is the block walked. Each query keeps a
    candidate buffer in index order: once k candidates are known only codes with d < t can
    still enter (a later code at distance t loses the tie); a full buffer is compacted to the
    best k and t shrinks. A final counting sort of the k survivors by distance (stable in the
    index) gives the sorted answer. ``cols`` is the database word-major (words x n);
    ``scratch_dtype`` (uint8 up to 255 bits) holds distances.
    """
    nq, n = qw.shape[0], cols.shape[1]
    cap = max(2 * k, 512)
    for b in prange((nq + query_block - 1) // query_block):
        q0 = b * query_block
        m = min(nq, q0 + query_block) - q0
        cd = np.empty((m, cap), np.int64)
        cj = np.empty((m, cap), np.int64)
        count = np.zeros(m, np.int64)
        thr = np.full(m, bits + 1, np.int64)
        buf = np.empty(db_block, scratch_dtype.dtype)
        for s in range(0, n, db_block):
            e = min(n, s + db_block)
            for qi in range(m):
                t, c = thr[qi], count[qi]
                if _block_distances(qw, cols, q0 + qi, s, e, buf, t) == 0:
                    continue
                for x in range(e - s):
                    d = np.int64(buf[x])
                    if d < t:
                        if c == cap:
                            c, t = _compact(cd[qi], cj[qi], c, k, bits)
                            if d >= t:
                                continue
                        cd[qi, c] = d
                        cj[qi, c] = s + x
                        c += 1
                thr[qi], count[qi] = t, c
        for qi in range(m):
            c, _ = _compact(cd[qi], cj[qi], count[qi], k, bits)
            start = np.zeros(bits + 2, np.int64)
            for x in range(c):
                start[cd[qi, x] + 1] += 1
            for x in range(1, bits + 2):
                start[x] += start[x - 1]
            for x in range(c):
                d = cd[qi, x]
                out_dist[q0 + qi, start[d]] = d
                out_idx[q0 + qi, start[d]] = cj[qi, x]
                start[d] += 1


@_keeping_torch_threads
@njit(cache=True, parallel=True)
def rank(qw, cols, bits, out_idx, scratch_dtype, db_block=4096):
    """Full ranking of the database for each query: vectorised distances, their histogram,
    then a counting sort by distance, stable in the database index."""
    n = cols.shape[1]
    for i in prange(qw.shape[0]):
        dist = np.empty(n, scratch_dtype.dtype)
        for s in range(0, n, db_block):
            e = min(n, s + db_block)
            _block_distances(qw, cols, i, s, e, dist[s:e], 0)
        # four interleaved histograms: consecutive equal distances do not wait on each other
        h4 = np.zeros((4, bits + 2), np.int64)
        for j in range(0, n - 3, 4):
            h4[0, dist[j] + 1] += 1
            h4[1, dist[j + 1] + 1] += 1
            h4[2, dist[j + 2] + 1] += 1
            h4[3, dist[j + 3] + 1] += 1
        for j in range(n - n % 4, n):
            h4[0, dist[j] + 1] += 1
        hist = h4[0] + h4[1] + h4[2] + h4[3]
        for d in range(1, bits + 2):
            hist[d] += hist[d - 1]
        for j in range(n):
            d = dist[j]
            out_idx[i, hist[d]] = j
            hist[d] += 1
