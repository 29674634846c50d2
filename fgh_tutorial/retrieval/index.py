"""``HammingIndex``: a database of packed binary codes with add / search / rank / save / load,
in the spirit of faiss's ``IndexBinaryFlat``.

    index = HammingIndex(48)
    index.add(db_codes)                      # +-1 codes (n x 48) or packed uint64 words
    distances, ids = index.search(queries, 10)
    index.save("db.npz"); HammingIndex.load("db.npz")

``backend="faiss"`` answers ``search`` with faiss (when installed); its ties are not ordered by
index, so the compiled default is the exact reference.

On a GPU: ``HammingIndex(48, device="cuda")``, or queries given as CUDA tensors, runs ``search``
and ``rank`` with the Triton kernels of ``retrieval.gpu`` (same results, bit for bit; CUDA
tensor queries get CUDA tensors back, anything else numpy arrays). ``backend="triton"`` runs
those kernels wherever the index's device is (the CPU needs ``TRITON_INTERPRET=1``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadOption
from .codes import check_words, load_codes, save_codes
from .hamming import WORD_BITS, database_columns, hamming_rank, hamming_topk, pack_codes

BACKENDS = ("numba", "faiss", "triton")


def check_k(k) -> int:
    """``k`` of a search: a positive integer (not a bool, not a float such as 2.5)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise BadOption(f"k must be a positive integer, got {k!r}")
    return int(k)


class HammingIndex:
    def __init__(self, bits: int, backend: str = "numba", device=None):
        if not 1 <= int(bits) <= 4096:
            raise BadOption(f"bits must be in 1..4096, got {bits}")
        if backend not in BACKENDS:
            raise BadOption(f"backend must be one of {BACKENDS}, got {backend!r}")
        if device is not None:
            from .gpu import device_for

            if device_for(device) is not None and backend == "faiss":  # checks the device too
                raise BadOption("backend='faiss' runs on the CPU; use backend='numba' or 'triton' with a CUDA device")
        self.bits, self.backend, self.device = int(bits), backend, device
        self._device_words = None  # (device, int64 words there) for the Triton kernels, dropped after add
        self.words = np.empty((0, self.n_words), np.uint64)
        self._columns = None  # word-major copy for the scan, rebuilt after add
        self._faiss = None
        if backend == "faiss":
            try:
                import faiss
            except ImportError as err:
                raise ImportError("backend='faiss' needs faiss: pip install faiss-cpu") from err
            self._faiss = faiss.IndexBinaryFlat(WORD_BITS * self.n_words)

    @property
    def n_words(self) -> int:
        return -(-self.bits // WORD_BITS)

    @property
    def ntotal(self) -> int:
        return len(self.words)

    def __len__(self) -> int:
        return self.ntotal

    def _as_words(self, codes, name):
        arr = codes.detach().cpu().numpy() if hasattr(codes, "detach") else np.asarray(codes)
        if arr.dtype == np.uint64:  # width and zero padding bits checked: padding never counts in a distance
            return np.ascontiguousarray(check_words(arr, name, self.bits))
        if arr.ndim != 2 or arr.shape[1] != self.bits:
            raise BadOption(f"{name} must be (n x {self.bits}) +-1 codes or packed uint64 words, got shape {arr.shape}")
        return pack_codes(arr)

    def add(self, codes) -> "HammingIndex":
        """Append codes; their ids continue from ``ntotal``."""
        new = self._as_words(codes, "codes")
        self.words = np.concatenate([self.words, new])
        self._columns = self._device_words = None
        if self._faiss is not None:
            self._faiss.add(new.view(np.uint8))
        return self

    def search(self, queries, k: int):
        """(distances, ids) of the k nearest codes, sorted, ties by lower id (numba backend)."""
        k = check_k(k)
        q = self._as_words(queries, "queries")
        if self._faiss is not None and self.ntotal:
            k = min(int(k), self.ntotal)
            dist, ids = self._faiss.search(q.view(np.uint8), k)
            return dist.astype(np.int32), ids
        dev = self._triton_device(queries)
        if dev is not None:
            from . import gpu

            return self._returned(queries, gpu.topk(gpu.to_device(q, dev), self._words_on(dev), k))
        if self._columns is None:
            self._columns = database_columns(self.words)
        return hamming_topk(q, self.words, k, db_columns=self._columns)

    def rank(self, queries) -> np.ndarray:
        """Every id, ranked by distance to each query (q x ntotal)."""
        q = self._as_words(queries, "queries")
        dev = self._triton_device(queries)
        if dev is not None:
            from . import gpu

            return self._returned(queries, gpu.rank(gpu.to_device(q, dev), self._words_on(dev)))
        return hamming_rank(q, self.words)

    def _triton_device(self, queries):
        """The torch device to run the Triton kernels on for these queries, None for the CPU
        kernels: a CUDA ``device``, CUDA tensor queries (unless device="cpu"), or backend="triton"."""
        if self.backend == "faiss":
            return None
        if self.device is None and self.backend == "numba" and not getattr(queries, "is_cuda", False):
            return None  # the CPU default, decided without importing torch
        import torch

        from .gpu import device_for

        dev = device_for(self.device, queries)
        if dev is None and self.backend == "triton":
            dev = torch.device("cuda" if self.device is None and torch.cuda.is_available() else "cpu")
        return dev

    def _words_on(self, dev):
        if self._device_words is None or self._device_words[0] != dev:
            from .gpu import to_device

            self._device_words = (dev, to_device(self.words, dev))
        return self._device_words[1]

    @staticmethod
    def _returned(queries, result):
        """CUDA tensors for CUDA tensor queries, numpy arrays otherwise (as the CPU kernels)."""
        if getattr(queries, "is_cuda", False):
            return result
        if isinstance(result, tuple):
            return tuple(r.cpu().numpy() for r in result)
        return result.cpu().numpy()

    def save(self, path) -> Path:
        """Write the codes atomically in the one codes format (``retrieval.codes.save_codes``)."""
        return save_codes(path, self.words, self.bits)

    @classmethod
    def load(cls, path, backend: str = "numba", device=None) -> "HammingIndex":
        """An index of a codes file; its bit count, word width and padding bits are checked."""
        words, bits, _ = load_codes(path)
        return cls(bits, backend, device).add(words)

    def __repr__(self) -> str:
        where = "" if self.device is None else f", device={str(self.device)!r}"
        return f"HammingIndex(bits={self.bits}, ntotal={self.ntotal}, backend={self.backend!r}{where})"
