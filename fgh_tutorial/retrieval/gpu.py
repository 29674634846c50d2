"""Hamming retrieval on a GPU: top-k, full ranking and distance histograms of packed codes,
with the Triton kernels of ``gpu_kernels`` and a little torch in between.

    words = to_device(pack_codes(codes), "cuda")          # int64 view of the uint64 words
    dist, idx = topk(query_words, words, 10)               # as hamming_topk, bit for bit
    order = rank(query_words, words)                       # as hamming_rank
    counts, rel = distance_histograms(qw, words, ql, dl)   # as metrics.distance_histograms

The database is cut into splits, so that a few queries still fill the device. Top-k and
ranking are two launches: (1) per-split histograms of distances, whose sums give every query's
histogram h(d), its threshold t (the K-th smallest distance) and each split's first position at
each distance; (2) the counting sort, which writes each code whose position is below K. Ties go
to the lower database index, as in the CPU kernels, so the results are equal, not just close.
Queries go in chunks, so that the per-split histograms stay within ``budget`` bytes.

The tie-aware mAP needs only h(d) and its relevant part: ``metrics`` turns them into APs
with the same closed form as on the CPU (``expected_ap_from_histograms``), so the APs match
to the last bit. The kernels run on CUDA tensors, or on CPU tensors when Triton interprets
them (``TRITON_INTERPRET=1`` set before ``gpu_kernels`` is first imported), which is how
the tests run them without a GPU.
"""
from __future__ import annotations

import numpy as np
import torch

from ..errors import BadOption, BadOptionType, EnvironmentFailure

WORD_BITS = 64


def _kernels():
    try:
        from . import gpu_kernels
    except ImportError as err:  # triton ships with torch's CUDA wheels on Linux
        raise ImportError(f"the GPU path needs triton (pip install triton): {err}") from err
    return gpu_kernels


def interpreted() -> bool:
    """Whether the Triton kernels were built for the interpreter (they then run on CPU tensors)."""
    return type(_kernels().histogram_kernel).__name__ == "InterpretedFunction"


def device_for(device=None, *arrays):
    """The torch device to run the Triton kernels on, or None for the CPU kernels.

    An explicit CUDA ``device`` ("cuda", "cuda:1", a torch.device) picks the GPU (and fails
    plainly when there is none); "cpu" picks the CPU kernels; ``None`` follows the data: the
    device of the first CUDA tensor among ``arrays``, else the CPU kernels.
    """
    if device is not None:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise BadOption(f"device must be None, 'cpu' or 'cuda[:n]', got {device!r}") from err
        if dev.type == "cpu":
            return None
        if dev.type != "cuda":
            raise BadOption(f"device must be None, 'cpu' or 'cuda[:n]', got {device!r}")
        if not torch.cuda.is_available():
            raise EnvironmentFailure(f"device={device!r} but torch sees no CUDA device")
        return dev
    for arr in arrays:
        if isinstance(arr, torch.Tensor) and arr.is_cuda:
            return arr.device
    return None


def to_device(words, device) -> torch.Tensor:
    """Packed uint64 words (numpy, n x W) as a contiguous int64 tensor on ``device``; such a
    tensor (these words already on some device) is moved without a trip through the host."""
    if isinstance(words, torch.Tensor):
        if words.dtype != torch.int64 or words.ndim != 2:
            raise TypeError(f"words must be a 2-D int64 tensor of packed words, got {words.dtype} {tuple(words.shape)}")
        return words.to(device).contiguous()
    arr = np.ascontiguousarray(words)
    if arr.dtype != np.uint64 or arr.ndim != 2:
        raise BadOptionType(f"words must be 2-D uint64 words from pack_codes, got {arr.dtype} {arr.shape}")
    return torch.from_numpy(arr.view(np.int64)).to(device)


def labels_to_device(labels, device):
    """(labels tensor, mode) for the kernels: class ids (n,) -> int64, mode 1; multi-hot rows
    (n x L) -> their positive entries packed into int64 words, mode 2 (relevant = shared bit).
    Labels may be numpy arrays or tensors on any device; class ids stay on the device."""
    if isinstance(labels, torch.Tensor) and labels.ndim == 1:
        return labels.to(device=device, dtype=torch.int64).contiguous(), 1
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.ndim == 1:
        return torch.from_numpy(np.ascontiguousarray(arr, np.int64)).to(device), 1
    from .codes import pack_codes

    return to_device(pack_codes(np.where(arr > 0, 1, -1)), device), 2


def _check(q, d):
    for name, t in (("query_words", q), ("db_words", d)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.int64 or t.ndim != 2:
            raise BadOptionType(f"{name} must be a 2-D int64 tensor of packed words (gpu.to_device)")
    if q.shape[1] != d.shape[1]:
        raise BadOption(f"query and database codes have {q.shape[1]} and {d.shape[1]} words per code")
    if q.device != d.device:
        raise BadOption(f"queries are on {q.device}, the database on {d.device}")
    if q.device.type != "cuda" and not interpreted():
        raise BadOption("the Triton kernels run on CUDA tensors, or on CPU tensors under TRITON_INTERPRET=1 "
                           "(set before fgh_tutorial.retrieval.gpu_kernels is imported)")
    if d.shape[0] >= 2**31:
        raise BadOption(f"at most 2^31 - 1 database codes per call, got {d.shape[0]}")
    return q.contiguous(), d.contiguous()


def _nb(n_words):
    """Histogram bins: a power of two above the largest distance, 64 W."""
    return next_pow2(WORD_BITS * n_words + 1)


def next_pow2(x: int) -> int:
    return 1 << (int(x) - 1).bit_length()


class _Layout:
    """Tiles and splits of the database, shared by both launches of one call.

    The histogram reads tiles of ``hist_block`` codes; the counting sort, whose one-hot tile
    is NB x ``place_block``, smaller ones (a divisor). Split s holds ``split_len`` codes from
    s * split_len on; on a GPU there are enough splits for about 4 programs per multiprocessor.
    """

    def __init__(self, q, d, block_n, splits, block_q):
        self.nb = _nb(q.shape[1])
        cuda = q.device.type == "cuda"
        self.hist_block = int(block_n or 1024)
        self.place_block = min(self.hist_block, max(1, 8192 // self.nb)) if cuda and not block_n else self.hist_block
        n_tiles = max(1, -(-d.shape[0] // self.hist_block))
        if splits is None:
            programs = 4 * torch.cuda.get_device_properties(q.device).multi_processor_count if cuda else 1
            splits = -(-programs // max(1, -(-q.shape[0] // block_q)))
        per = -(-n_tiles // max(1, min(int(splits), n_tiles)))
        self.split_len, self.splits = per * self.hist_block, -(-n_tiles // per)
        self.block_q = min(next_pow2(block_q), next_pow2(q.shape[0]))  # queries per histogram program

    def chunks(self, n_q, nbins, budget):
        """Query slices whose per-split histograms (and int64 copies) fit in ``budget`` bytes."""
        step = max(1, budget // (self.splits * nbins * 24))
        return [slice(a, min(a + step, n_q)) for a in range(0, n_q, step)]

    def histograms(self, q, d, ql=None, dl=None, mode=0):
        """Per-split histograms (S x q x NBINS, int32) of a chunk of queries."""
        nbins = self.nb * (2 if mode else 1)
        hist = torch.empty((self.splits, q.shape[0], nbins), dtype=torch.int32, device=q.device)
        lw = dl.shape[1] if mode == 2 else 1
        if mode == 0:
            ql = dl = q  # not read
        W = q.shape[1]
        _kernels().histogram_kernel[(-(-q.shape[0] // self.block_q), self.splits)](
            q, d, ql, dl, hist, q.shape[0], d.shape[0], self.split_len, W=W, WP=next_pow2(W), NB=self.nb,
            NBINS=nbins, LABELS=mode, LW=lw, LWP=next_pow2(lw), BLOCK_Q=self.block_q, BLOCK_N=self.hist_block,
            HW=not interpreted())
        return hist


def distance_histograms(query_words, db_words, query_labels, db_labels, bits: int, mode: int = 1, *,
                        block_n=None, splits=None, block_q=4, budget=256 << 20):
    """Per query and distance d = 0..bits: (counts, relevant counts), two int64 tensors
    (q x bits+1) on the device, equal to the CPU kernel's. Labels and ``mode`` come from
    ``labels_to_device``."""
    q, d = _check(query_words, db_words)
    if not 1 <= int(bits) <= WORD_BITS * q.shape[1]:
        raise BadOption(f"bits must be in 1..{WORD_BITS * q.shape[1]}, got {bits}")
    if mode not in (1, 2) or len(query_labels) != q.shape[0] or len(db_labels) != d.shape[0]:
        raise BadOption("labels must come from labels_to_device, one per query and database code")
    lay = _Layout(q, d, block_n, splits, block_q)
    ql, dl = query_labels.to(q.device).contiguous(), db_labels.to(q.device).contiguous()
    counts = torch.zeros((q.shape[0], bits + 1), dtype=torch.int64, device=q.device)
    rel = torch.zeros_like(counts)
    for sl in lay.chunks(q.shape[0], 2 * lay.nb, budget):
        h = lay.histograms(q[sl], d, ql[sl], dl, mode).sum(0, dtype=torch.int64)
        rel[sl] = h[:, lay.nb:lay.nb + bits + 1]
        counts[sl] = h[:, :bits + 1] + rel[sl]
    return counts, rel


def _place(q, d, k, out_idx, out_dist, block_n, splits, block_q, budget):
    """The counting sort of every query's codes, writing positions < k."""
    lay = _Layout(q, d, block_n, splits, block_q)
    for sl in lay.chunks(q.shape[0], lay.nb, budget):
        qc = q[sl]
        hist = lay.histograms(qc, d).to(torch.int64)
        total = hist.sum(0)
        upto = total.cumsum(1)  # H(d + 1)
        thr = (upto < k).sum(1).to(torch.int32)  # t: the first d with H(d + 1) >= k
        base = ((upto - total).unsqueeze(0) + hist.cumsum(0) - hist).to(torch.int32)  # H(d) + earlier splits
        _kernels().place_kernel[(qc.shape[0], lay.splits)](
            qc, d, base, thr, out_idx[sl], out_idx if out_dist is None else out_dist[sl], qc.shape[0], d.shape[0],
            lay.split_len, k, W=q.shape[1], WP=next_pow2(q.shape[1]), NB=lay.nb, WRITE_DIST=out_dist is not None,
            BLOCK_N=lay.place_block, HW=not interpreted())


def topk(query_words, db_words, k: int, *, block_n=None, splits=None, block_q=4, budget=256 << 20):
    """(distances int32, indices int64), both (q x min(k, n)) on the device: the k nearest
    codes by (distance, index), as ``hamming.hamming_topk``."""
    if int(k) < 1:
        raise BadOption(f"k must be at least 1, got {k}")
    q, d = _check(query_words, db_words)
    k = min(int(k), d.shape[0])
    dist = torch.empty((q.shape[0], k), dtype=torch.int32, device=q.device)
    idx = torch.empty((q.shape[0], k), dtype=torch.int64, device=q.device)
    if k and q.shape[0]:
        _place(q, d, k, idx, dist, block_n, splits, block_q, budget)
    return dist, idx


def rank(query_words, db_words, *, block_n=None, splits=None, block_q=4, budget=256 << 20) -> torch.Tensor:
    """Every database index ranked for each query (q x n, int32) on the device: a counting sort
    by distance, ties by lower index, as ``hamming.hamming_rank``."""
    q, d = _check(query_words, db_words)
    out = torch.empty((q.shape[0], d.shape[0]), dtype=torch.int32, device=q.device)
    if out.numel():
        _place(q, d, d.shape[0], out, None, block_n, splits, block_q, budget)
    return out
