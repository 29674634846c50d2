"""The retrieval explorer's data side: trained systems, their learned database codes, and one
query's top-k with everything the explorer shows (distances, differing bits, AP, P@k, CAMs).

A *system* is a trained network (the query encoder) with the database codes V that the
solver learned, for several code lengths at once (one head segment each); ``bundle.py`` holds
systems trained on one dataset and ships one with the package, so the explorer opens at once:

    bundle = load_bundle()                        # or build_bundle(profile): retrain it
    hit = retrieve(bundle.systems["FCAENet"], bundle.query(7), 48, bundle.db_labels, bundle.query_labels[7])
    hit.ids, hit.distances, hit.correct, hit.ap, hit.precision

For +-1 codes of c bits the Hamming distance is  d_H(q, v) = (c - q.v) / 2 ; the k nearest
come from the packed-code index, ties broken by the lower database index (the order shown).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import BadOption
from ..attention.cam import CodeSimilarity, compute_cams
from ..models.encode import encode
from ..retrieval.index import HammingIndex
from ..retrieval.metrics import average_precisions


# ---------------------------------------------------------------- one system, one query
@dataclass
class TrainedSystem:
    """A trained network and its learned database codes ``codes`` (n x sum(lengths), +-1);
    code length ``lengths[i]`` is the i-th block of columns."""

    name: str
    model: torch.nn.Module
    codes: np.ndarray
    lengths: tuple
    system: str = "adsh"  # the system of the registry the network belongs to (systems.py)
    map: dict = field(default_factory=dict)  # tie-aware mAP of the query split per code length
    _indexes: dict = field(default_factory=dict, repr=False)

    def columns(self, bits: int) -> slice:
        if bits not in self.lengths:
            raise BadOption(f"{self.name} has codes of {list(self.lengths)} bits, not {bits}")
        start = sum(self.lengths[:list(self.lengths).index(bits)])
        return slice(start, start + bits)

    def index(self, bits: int) -> HammingIndex:
        if bits not in self._indexes:
            self._indexes[bits] = HammingIndex(bits).add(self.codes[:, self.columns(bits)])
        return self._indexes[bits]

    def cam_layer(self):
        """The layer whose gradients the explorer's CAMs use: the one the network names."""
        return self.model.cam_layer()


@dataclass(frozen=True)
class Retrieval:
    """The k nearest database codes of one query at one code length."""

    bits: int
    query_code: np.ndarray  # (bits,) +-1
    ids: np.ndarray  # (k,) database indices, nearest first
    distances: np.ndarray  # (k,) Hamming distances
    codes: np.ndarray  # (k, bits) the results' codes
    labels: np.ndarray  # (k,) the results' classes
    query_label: int | None = None  # None: unknown (an uploaded image)
    ap: float | None = None  # tie-aware AP of the query over the whole database

    @property
    def correct(self) -> np.ndarray | None:
        return None if self.query_label is None else self.labels == self.query_label

    @property
    def precision(self) -> float | None:
        """Precision of the k results shown (ties in the order shown)."""
        return None if self.query_label is None else float(self.correct.mean())

    @property
    def differing(self) -> np.ndarray:
        """(k, bits): where each result's code differs from the query's; row sums = distances."""
        return self.codes != self.query_code


def retrieve(system: TrainedSystem, x: torch.Tensor, bits: int, db_labels, label: int | None = None, k: int = 10) -> Retrieval:
    """Encode the query image ``x`` (1 x 3 x H x W) and find its ``k`` nearest database codes."""
    cols = system.columns(bits)
    q = encode(system.model, x)[:, cols]
    distances, ids = system.index(bits).search(q, k)
    ids, db_labels = ids[0], np.asarray(db_labels)
    ap = None
    if label is not None:
        ap = float(average_precisions(q, system.codes[:, cols], np.array([label]), db_labels)[0])
    return Retrieval(bits, q[0], ids, distances[0], system.codes[ids, cols], db_labels[ids],
                     None if label is None else int(label), ap)


def explain(system: TrainedSystem, x_query: torch.Tensor, x_results: torch.Tensor, hit: Retrieval) -> np.ndarray:
    """Grad-CAMs (1 + k, H, W) of the query and its results, all with the target q.u: the
    query's code at this length against each image's relaxed code (the other bits count 0).
    Bright regions are what pulls an image's code towards the query's."""
    target = np.zeros(sum(system.lengths), np.float32)
    target[system.columns(hit.bits)] = hit.query_code
    images = torch.cat([x_query, x_results])
    return compute_cams(system.model, images, "gradcam", targets=[CodeSimilarity(target)] * len(images),
                        layer=system.cam_layer())


__all__ = ["Retrieval", "TrainedSystem", "explain", "retrieve"]
