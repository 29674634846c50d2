"""Compiled scan kernels (numba) over packed uint64 codes and single-label data.

One pass per query over the database: d = popcount(q XOR b) summed over words, then
per-distance counts, or the stable-order AP. Parallel over queries.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, inline="always")
def _popdist(qw, dw, i, j):
    d = 0
    for w in range(qw.shape[1]):
        x = qw[i, w] ^ dw[j, w]
        # SWAR popcount; numba lowers it to the popcnt instruction where available
        x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
        x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
        x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
        d += np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))
    return d


@njit(cache=True, parallel=True)
def distance_histograms(qw, dw, ql, dl, counts, rel):
    """counts[i, d] = #{j : d_H(i, j) = d}; rel[i, d] = the same among j with dl[j] == ql[i]."""
    for i in prange(qw.shape[0]):
        for j in range(dw.shape[0]):
            d = _popdist(qw, dw, i, j)
            counts[i, d] += 1
            if dl[j] == ql[i]:
                rel[i, d] += 1


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
