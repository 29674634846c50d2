"""The positive of ESRL's (anchor, positive, erased) triplet.

FCAENet section 3: "by the pair-wise similarity information, we select the positive-pair for x_a
as x_p" from the training set. With single labels, S_ap = 1 means the same class, so

    dataset   p = a uniformly drawn *other* image of the anchor's class, over the whole training
              set (the paper; the anchor itself only when its class has a single image);
    batch     p = another image of the anchor's class inside the mini-batch, the anchor itself
              when it has no classmate there (the course's original reading; with 200 classes
              and batches of 64 that is most anchors).

Both draw from the run's seeded generator.
"""
from __future__ import annotations

import torch

from ..errors import BadOption

POSITIVES = ("batch", "dataset")


def batch_positives(y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """For each image of the batch, the position (in the batch) of a random other image with the
    same label (its own position when alone)."""
    weights = (y[:, None] == y[None, :]).float().cpu()
    weights.fill_diagonal_(0)
    alone = weights.sum(1) == 0
    weights[alone, torch.nonzero(alone)[:, 0]] = 1
    return torch.multinomial(weights, 1, generator=g)[:, 0]


class DatasetPositives:
    """Draws, for database rows ``idx``, other rows of the same class from all n rows.

    Rows are grouped by class once (a stable argsort); a draw is one uniform integer per anchor:
    k in [0, n_y - 2], shifted by one at or past the anchor's own rank in its class."""

    def __init__(self, labels):
        y = torch.as_tensor(labels).cpu().long()
        if y.ndim != 1 or len(y) == 0:
            raise BadOption(f"labels must be a non-empty vector of class ids, got shape {tuple(y.shape)}")
        self.labels = y
        self.order = torch.argsort(y, stable=True)  # rows grouped by class
        self.count = torch.bincount(y)
        self.start = torch.cumsum(self.count, 0) - self.count
        self.rank = torch.empty_like(self.order)
        self.rank[self.order] = torch.arange(len(y)) - self.start[y[self.order]]  # rank within the class

    def __call__(self, idx, g: torch.Generator) -> torch.Tensor:
        idx = torch.as_tensor(idx).cpu().long()
        y = self.labels[idx]
        count = self.count[y]
        k = (torch.rand(len(idx), generator=g, dtype=torch.float64) * (count - 1).clamp(min=1)).long()
        k = torch.minimum(k, (count - 2).clamp(min=0))
        k = k + (k >= self.rank[idx]).long()  # skip the anchor itself
        k = torch.where(count > 1, k, torch.zeros_like(k))  # alone in its class: itself
        return self.order[self.start[y] + k]
