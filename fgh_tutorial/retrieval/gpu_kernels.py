"""Triton kernels for Hamming retrieval over packed codes: distance histograms and placement
by counting sort. The torch glue that launches them is ``retrieval.gpu``.

Codes are the packed words of ``codes.py`` viewed as int64, row-major (n x W). Every kernel
computes a distance the same way,

    d_H(q, b) = sum_w popcount(q_w XOR b_w),

with popcount chosen when the kernel is traced (the constexpr ``HW``): on a GPU the hardware
instruction (libdevice's popc: ``popc.b64`` on NVIDIA), and under Triton's interpreter, which
cannot run libdevice calls, bit arithmetic (SWAR: counts of 2, 4 and 8 bits side by side, then
one product adds the eight byte counts into the top byte),

    x = x - ((x >> 1) & 0x5555...)                      2-bit counts
    x = (x & 0x3333...) + ((x >> 2) & 0x3333...)        4-bit counts
    x = (x + (x >> 4)) & 0x0f0f...                      byte counts
    popcount = (x * 0x0101...01) >> 56                  their sum, in the top byte

so the kernels that run on a GPU also run on the CPU under ``TRITON_INTERPRET=1`` (numpy
underneath), which is how the tests check them; both popcounts give the same integers. The
shifts of signed int64 are arithmetic, which changes nothing here: each mask clears the bits a
sign would fill, after the third line every byte is at most 8 (x >= 0), and the top byte of the
product, a sum of eight bytes, is at most 64. Database positions are computed in int64, so a
split that ends past 2^31 never wraps around.

Two kernels:

* ``histogram_kernel``: for a block of queries and a split of the database, how many codes lie
  at each distance d (and, with labels, d + NB for the relevant ones). Splits add up.
* ``place_kernel``: the counting sort. With h(d) the query's histogram and H(d) = sum_{e<d} h(e),
  the code j at distance d goes to position

      pos(j) = H(d) + #{i < j : d_i = d}

  (ties by lower index, as on the CPU), and is written only when pos(j) < K: K = n is the full
  ranking, K = k the top-k. Each split starts from H(d) plus the counts of the splits before it
  (``base``); inside a split a running count per distance is carried from tile to tile, and the
  rank inside a tile is a cumulative sum along a one-hot (NB x BLOCK_N) matrix. For the top-k,
  with t the k-th smallest distance (the threshold from the histogram), a tile holding no d < t,
  and no d = t while positions below K are left, can place nothing: it costs its distances only.
"""
from __future__ import annotations

import triton
import triton.language as tl
from triton.language.extra import libdevice


@triton.jit
def popcount64(x, HW: tl.constexpr):
    """Set bits of each int64 as int32: the hardware instruction (HW) or SWAR (see the module docstring)."""
    if HW:
        n = libdevice.popc(x)
    else:
        x = x - ((x >> 1) & 0x5555555555555555)
        x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333)
        x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0F
        n = ((x * 0x0101010101010101) >> 56).to(tl.int32)
    return n


@triton.jit
def histogram_kernel(q_ptr, db_ptr, ql_ptr, dl_ptr, hist_ptr, n_q, n_db, split_len,
                     W: tl.constexpr, WP: tl.constexpr, NB: tl.constexpr, NBINS: tl.constexpr,
                     LABELS: tl.constexpr, LW: tl.constexpr, LWP: tl.constexpr, BLOCK_Q: tl.constexpr,
                     BLOCK_N: tl.constexpr, HW: tl.constexpr):
    """hist[s, q, d] = #{j in split s : d_H(q, j) = d}; with labels, bins NB..2NB-1 count the
    relevant codes (bin d + NB) and bins 0..NB-1 the others. LABELS: 0 none, 1 class ids
    (relevant when equal), 2 multi-hot label words (relevant when they share a bit).
    NBINS = 2 NB with labels, else NB. Split s holds codes s * split_len ... (s + 1) * split_len - 1.
    HW: the hardware popcount (False under the interpreter). Grid: (query blocks, splits)."""
    qb = tl.program_id(0)
    s = tl.program_id(1)
    rows = tl.arange(0, BLOCK_Q)
    words = tl.arange(0, WP)
    acc = tl.zeros((BLOCK_Q, NBINS), tl.int32)
    lwords = tl.arange(0, LWP)
    for tile in range(split_len // BLOCK_N):
        j = s.to(tl.int64) * split_len + tile * BLOCK_N + tl.arange(0, BLOCK_N)
        valid = j < n_db
        codes = tl.load(db_ptr + j[:, None] * W + words[None, :],
                        mask=valid[:, None] & (words[None, :] < W), other=0)  # padding words read 0
        if LABELS == 1:
            dlab = tl.load(dl_ptr + j, mask=valid, other=0)
        if LABELS == 2:
            dlab = tl.load(dl_ptr + j[:, None] * LW + lwords[None, :],
                           mask=valid[:, None] & (lwords[None, :] < LW), other=0)
        for r in tl.static_range(BLOCK_Q):
            qi = tl.minimum(qb * BLOCK_Q + r, n_q - 1)  # rows past n_q repeat the last; not stored
            qw = tl.load(q_ptr + qi * W + words, mask=words < W, other=0)
            key = tl.sum(popcount64(codes ^ qw[None, :], HW), axis=1)  # d_H
            if LABELS == 1:
                key += NB * (dlab == tl.load(ql_ptr + qi)).to(tl.int32)
            if LABELS == 2:
                qlab = tl.load(ql_ptr + qi * LW + lwords, mask=lwords < LW, other=0)
                shared = tl.max(((dlab & qlab[None, :]) != 0).to(tl.int32), axis=1)
                key += NB * shared
            h = tl.histogram(key, NBINS, mask=valid)
            acc += tl.where(rows[:, None] == r, h[None, :], 0)
    q = qb * BLOCK_Q + rows
    bins = tl.arange(0, NBINS)
    tl.store(hist_ptr + (s.to(tl.int64) * n_q + q[:, None]) * NBINS + bins[None, :], acc, mask=(q < n_q)[:, None])


@triton.jit
def place_kernel(q_ptr, db_ptr, base_ptr, thr_ptr, out_idx_ptr, out_dist_ptr, n_q, n_db, split_len, K,
                 W: tl.constexpr, WP: tl.constexpr, NB: tl.constexpr, WRITE_DIST: tl.constexpr,
                 BLOCK_N: tl.constexpr, HW: tl.constexpr):
    """out_idx[q, pos(j)] = j (and out_dist[q, pos(j)] = d) for every j with pos(j) < K, where
    pos(j) = base[s, q, d] + (codes of split s before j at distance d). thr[q] = t, the
    distance of the K-th code. Grid: (queries, splits)."""
    qi = tl.program_id(0)
    s = tl.program_id(1)
    bins = tl.arange(0, NB)
    row = base_ptr + (s.to(tl.int64) * n_q + qi) * NB
    run = tl.load(row + bins)  # the next free position at each distance
    t = tl.load(thr_ptr + qi)
    run_t = tl.load(row + t)  # the same at t, as a scalar
    words = tl.arange(0, WP)
    qw = tl.load(q_ptr + qi * W + words, mask=words < W, other=0)
    for tile in range(split_len // BLOCK_N):
        j = s.to(tl.int64) * split_len + tile * BLOCK_N + tl.arange(0, BLOCK_N)
        valid = j < n_db
        codes = tl.load(db_ptr + j[:, None] * W + words[None, :],
                        mask=valid[:, None] & (words[None, :] < W), other=0)
        d = tl.sum(popcount64(codes ^ qw[None, :], HW), axis=1)  # d_H
        wanted = valid & ((d < t) | ((d == t) & (run_t < K)))
        if tl.max(wanted.to(tl.int32)) > 0:
            hot = (bins[:, None] == d[None, :]) & valid[None, :]  # (NB x BLOCK_N)
            hot32 = hot.to(tl.int32)
            rank = tl.cumsum(hot32, axis=1) - 1  # among the tile's codes at the same distance
            pos = tl.sum(tl.where(hot, rank + run[:, None], 0), axis=0)
            keep = valid & (pos < K)
            tl.store(out_idx_ptr + qi.to(tl.int64) * K + pos, j, mask=keep)
            if WRITE_DIST:
                tl.store(out_dist_ptr + qi.to(tl.int64) * K + pos, d, mask=keep)
            run += tl.sum(hot32, axis=1)
            run_t += tl.sum((valid & (d == t)).to(tl.int32))
