"""Order-aware reweighting of triplets for deep binary embedding (abstract in
``deep_hashing_abstracts.txt``, third entry): every triplet (anchor a, positive p, negative n) of a
batch gets a weight computed from the rank order of the current binary codes, and the triplet loss
is squared.

Rank order. For anchor a, rank the other images of the batch by the Hamming distance of their binary
codes b = sign(u) to b_a (ties by batch position; batches are shuffled, so this is a random tie
order). Let AP_a be the average precision of that ranking (relevant = same class, R_a of them),
pos(j) the 1-based position of image j, Hits(k) the relevant images in the top k and
Q(k) = sum over relevant positions r <= k of 1/r.

Weight. w_apn = |AP_a after swapping p and n - AP_a| (the change of the retrieval metric if the two
traded places, in the manner of LambdaRank's |Delta metric| weights, Burges et al. 2006). With
i = pos(p), j = pos(n):

    i < j:  R_a Delta AP = Hits(j)/j - Hits(i)/i - (Q(j - 1) - Q(i))            (p falls to j)
    i > j:  R_a Delta AP = (Hits(j) + 1)/j - Hits(i)/i + (Q(i - 1) - Q(j))      (p rises to j)

A triplet whose negative sits just above or below its positive near the top of the ranking moves
AP most and weighs most; one ordered far apart at the bottom of the ranking weighs little.

Squared triplet loss, on the relaxed codes with the normalised distance d(u, v) = ||u - v||^2 / (4c)
(the share of differing bits for binary codes) and margin m:

    l_apn = max(0, m + d(u_a, u_p) - d(u_a, u_n))^2
    L     = sum_t w_t l_t / sum_t w_t         over all valid triplets t of the batch, per segment

Readings where the abstract is open: the weighting factor as |Delta AP| of the swap (the abstract says
only that the factors "depend on the rank order of binary codes"), the normalised distance and margin
0.25, and class-balanced batches (P classes x K images) so that every anchor has positives in its
batch. Database codes are the network's codes of the database.
"""
from __future__ import annotations

import torch

from .config import TrainConfig
from .symmetric import train_symmetric

MARGIN = 0.25
PER_CLASS = 4  # K images per class in a batch


def order_aware_weights(codes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """w[a, p, n] = |Delta AP_a| of swapping p and n in a's Hamming ranking of the batch (B x B x B),
    0 where (a, p, n) is not a triplet (p != a of a's class, n of another class). ``codes``: +-1."""
    B, c = codes.shape
    dist = (c - codes.float() @ codes.float().T) / 2
    dist.fill_diagonal_(float("inf"))  # the anchor is not in its own ranking
    order = torch.sort(dist, dim=1, stable=True).indices[:, :B - 1]  # (B, B-1) others, nearest first
    same = labels[:, None] == labels[None, :]
    rel = same.gather(1, order).float()  # relevance in ranked order
    position = torch.arange(1, B, dtype=torch.float32)
    hits = rel.cumsum(1)  # Hits(k), k = 1..B-1
    q = (rel / position).cumsum(1)  # Q(k)
    # both cases split into a term of n's position and a term of p's:
    #   i < j:  A(j) - B(i),  A(k) = Hits(k)/k - Q(k-1),      B(k) = Hits(k)/k - Q(k)
    #   i > j:  C(j) - D(i),  C(k) = (Hits(k)+1)/k - Q(k),    D(k) = Hits(k)/k - Q(k-1)
    q_before = torch.cat([torch.zeros(B, 1), q[:, :-1]], 1)  # Q(k - 1)
    ratio = hits / position
    by_rank = {"A": ratio - q_before, "B": ratio - q, "C": (hits + 1) / position - q, "D": ratio - q_before}
    pos = torch.empty(B, B, dtype=torch.long)  # pos[a, j]: j's 1-based position in a's ranking
    pos.scatter_(1, order, torch.arange(1, B).expand(B, -1).contiguous())
    pos.fill_diagonal_(0)
    by_item = {k: torch.zeros(B, B).scatter_(1, order, v) for k, v in by_rank.items()}  # the same, per image
    before = pos[:, :, None] < pos[:, None, :]  # p ranked above n
    delta = torch.where(before, by_item["A"][:, None, :] - by_item["B"][:, :, None],
                        by_item["C"][:, None, :] - by_item["D"][:, :, None])
    w = delta.abs() / rel.sum(1).clamp(min=1)[:, None, None]
    eye = torch.eye(B, dtype=torch.bool)
    valid = (same & ~eye)[:, :, None] & ~same[:, None, :]
    return torch.where(valid, w, torch.zeros(()))


def squared_triplet_loss(u: torch.Tensor, weights: torch.Tensor, margin: float = MARGIN) -> torch.Tensor:
    """sum_t w_t max(0, m + d(a, p) - d(a, n))^2 / sum_t w_t, d = ||u - v||^2 / (4c)."""
    c = u.shape[1]
    sq = u.pow(2).sum(1)
    d = (sq[:, None] + sq[None, :] - 2 * u @ u.T) / (4 * c)
    a, p, n = torch.nonzero(weights > 0, as_tuple=True)  # the triplets (a few % of the B^3 entries)
    if len(a) == 0:
        return u.sum() * 0.0
    w = weights[a, p, n]
    hinge = (margin + d[a, p] - d[a, n]).clamp(min=0).pow(2)
    return (w * hinge).sum() / w.sum()


def order_aware_triplet_loss(u: torch.Tensor, labels: torch.Tensor, segments, margin: float = MARGIN) -> torch.Tensor:
    """The squared triplet loss of each code segment, weighted from that segment's binary codes."""
    segments = list(segments)
    loss = 0.0
    for part in u.split(segments, 1):
        w = order_aware_weights(torch.where(part.detach() >= 0, 1.0, -1.0).cpu(), labels.cpu()).to(u.device)
        loss = loss + squared_triplet_loss(part, w.to(part.dtype), margin)
    return loss / len(segments)


def class_balanced_batches(sample, labels, cfg: TrainConfig, g: torch.Generator, per_class: int = PER_CLASS):
    """As many batches as the sample fills (len(sample) // batch_size), each of batch_size // K
    classes of the sample drawn at random with K of their sampled images (with replacement when a
    class has fewer): as many images as ``random_batches``, arranged so that anchors have positives."""
    sample_labels = torch.as_tensor(labels)[sample]
    classes = torch.unique(sample_labels)
    members = {int(k): sample[sample_labels == k] for k in classes}
    k = max(2, min(per_class, cfg.batch_size))
    p = max(1, min(len(classes), cfg.batch_size // k))
    out = []
    for _ in range(max(1, len(sample) // cfg.batch_size)):
        chosen = classes[torch.randperm(len(classes), generator=g)[:p]]
        batch = []
        for cls in chosen.tolist():
            idx = members[cls]
            pick = (torch.randperm(len(idx), generator=g)[:k] if len(idx) >= k
                    else torch.randint(len(idx), (k,), generator=g))
            batch.append(idx[pick])
        out.append(torch.cat(batch))
    return out


def train_triplets(model, images, labels, cfg: TrainConfig, margin: float = MARGIN, **kwargs):
    """Order-aware reweighted squared-triplet training; returns (database codes +-1, history).
    ``kwargs`` go to ``train_symmetric``."""
    def batch_loss(model, x, y, g):
        u = model(x, y) if getattr(model, "takes_labels", False) else model(x)
        return order_aware_triplet_loss(u, y, cfg.segments, margin)

    return train_symmetric(model, images, labels, cfg, batch_loss, batches=class_balanced_batches,
                           name="triplets", **kwargs)
