"""``HammingIndex``: a database of packed binary codes with add / search / rank / save / load,
in the spirit of faiss's ``IndexBinaryFlat``.

    index = HammingIndex(48)
    index.add(db_codes)                      # +-1 codes (n x 48) or packed uint64 words
    distances, ids = index.search(queries, 10)
    index.save("db.npz"); HammingIndex.load("db.npz")

``backend="faiss"`` answers ``search`` with faiss (when installed); its ties are not ordered by
index, so the compiled default is the exact reference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .codes import check_words, load_codes, save_codes
from .hamming import WORD_BITS, database_columns, hamming_rank, hamming_topk, pack_codes

BACKENDS = ("numba", "faiss")


class HammingIndex:
    def __init__(self, bits: int, backend: str = "numba"):
        if not 1 <= int(bits) <= 4096:
            raise ValueError(f"bits must be in 1..4096, got {bits}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.bits, self.backend = int(bits), backend
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
            raise ValueError(f"{name} must be (n x {self.bits}) +-1 codes or packed uint64 words, got shape {arr.shape}")
        return pack_codes(arr)

    def add(self, codes) -> "HammingIndex":
        """Append codes; their ids continue from ``ntotal``."""
        new = self._as_words(codes, "codes")
        self.words = np.concatenate([self.words, new])
        self._columns = None
        if self._faiss is not None:
            self._faiss.add(new.view(np.uint8))
        return self

    def search(self, queries, k: int):
        """(distances, ids) of the k nearest codes, sorted, ties by lower id (numba backend)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        q = self._as_words(queries, "queries")
        if self._faiss is not None and self.ntotal:
            k = min(int(k), self.ntotal)
            dist, ids = self._faiss.search(q.view(np.uint8), k)
            return dist.astype(np.int32), ids
        if self._columns is None:
            self._columns = database_columns(self.words)
        return hamming_topk(q, self.words, k, db_columns=self._columns)

    def rank(self, queries) -> np.ndarray:
        """Every id, ranked by distance to each query (q x ntotal)."""
        return hamming_rank(self._as_words(queries, "queries"), self.words)

    def save(self, path) -> Path:
        """Write the codes atomically in the one codes format (``retrieval.codes.save_codes``)."""
        return save_codes(path, self.words, self.bits)

    @classmethod
    def load(cls, path, backend: str = "numba") -> "HammingIndex":
        """An index of a codes file; its bit count, word width and padding bits are checked."""
        words, bits, _ = load_codes(path)
        return cls(bits, backend).add(words)

    def __repr__(self) -> str:
        return f"HammingIndex(bits={self.bits}, ntotal={self.ntotal}, backend={self.backend!r})"
