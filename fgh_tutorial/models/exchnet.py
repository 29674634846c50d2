"""ExchNet (Cui et al., ECCV 2020): part attention, attention constraints, class anchors and
the exchange of local features.

Architecture, on any backbone split into ``stem`` (the first stages, mid-level features X) and
``last`` (the last stage):

    global feature   g = GAP(last(X))
    local features   L = last'(X), the last stage again with stride 1 (keeps X's resolution)
    part attention   A_i = sigmoid(conv1x1(X))_i,  i = 1..M
    part features    f_i = sum_xy A_i(x,y) L(x,y) / sum_xy A_i(x,y)
    code             u = tanh(W [g; f_1; ...; f_M] + b)

Attention constraints (losses, zero when the constraint holds):

    spatial diversity  L_sd = mean_{i<j} cos(A_i, A_j)     (maps that do not overlap score 0)
    channel diversity  L_cd = mean_{i<j} cos(f_i, f_j)     (parts on disjoint channels score 0)

Local feature alignment: per class c and part i an anchor a_{c,i}, the running mean of f_i over
the training images of class c. During training each f_i of an image of class y is replaced by
a_{y,i} with probability p (an independent Bernoulli draw per image and part), so that "part i"
must mean the same body part across a class.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..retrieval.codes import hard_sign
from .heads import HashHead


def _pairwise_cos(x: torch.Tensor) -> torch.Tensor:
    """Mean cosine similarity over the pairs i < j of x (B, M, D); 0 when M < 2."""
    m = x.shape[1]
    if m < 2:
        return x.new_zeros(())
    z = F.normalize(x.flatten(2), dim=2, eps=1e-8)
    sim = z @ z.transpose(1, 2)
    iu = torch.triu_indices(m, m, 1, device=x.device)
    return sim[:, iu[0], iu[1]].mean()


def spatial_diversity(maps: torch.Tensor) -> torch.Tensor:
    """L_sd of part maps (B, M, h, w)."""
    return _pairwise_cos(maps)


def channel_diversity(parts: torch.Tensor) -> torch.Tensor:
    """L_cd of part features (B, M, D)."""
    return _pairwise_cos(parts)


class ClassAnchors(nn.Module):
    """Running means a_{c,i} of the part features per class: after any sequence of updates,
    an anchor is the mean of every part feature of its class seen so far."""

    def __init__(self, n_classes: int, n_parts: int, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_classes, n_parts, dim))
        self.register_buffer("count", torch.zeros(n_classes))

    @torch.no_grad()
    def update(self, parts: torch.Tensor, labels: torch.Tensor) -> None:
        n = torch.bincount(labels, minlength=len(self.count)).to(self.count.dtype)
        sums = torch.zeros_like(self.mean).index_add_(0, labels, parts.detach().to(self.mean.dtype))
        seen = n > 0
        total = self.count + n
        self.mean[seen] = (self.mean[seen] * self.count[seen, None, None] + sums[seen]) / total[seen, None, None]
        self.count.copy_(total)

    def reset(self) -> None:
        self.mean.zero_()
        self.count.zero_()


def exchange(parts: torch.Tensor, anchors: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Replace part features by their class anchors where ``mask`` (B, M) is true:
    ``parts`` (B, M, D), ``anchors`` (B, M, D) (each image's class anchors)."""
    return torch.where(mask[..., None], anchors, parts)


def _stride_one(stage: nn.Module) -> nn.Module:
    """A copy of a ResNet stage whose convolutions keep the resolution (stride 1)."""
    stage = copy.deepcopy(stage)
    for module in stage.modules():
        if isinstance(module, nn.Conv2d) and module.stride != (1, 1):
            module.stride = (1, 1)
    return stage


class ExchNet(nn.Module):
    """ExchNet on a course backbone (``minires`` or a torchvision ResNet through ``Backbone``):
    the last child of ``backbone.features`` is the last stage."""

    def __init__(self, backbone: nn.Module, bits: int, n_classes: int, n_parts: int = 4,
                 exchange_prob: float = 0.5, diversity_weight: float = 0.1):
        super().__init__()
        children = list(backbone.features.children())
        self.stem = nn.Sequential(*children[:-1])
        self.last = children[-1]
        self.local = _stride_one(self.last)
        mid = _out_channels(self.stem)
        dim = backbone.out_channels
        self.attention = nn.Conv2d(mid, n_parts, 1)
        self.head = HashHead(dim * (n_parts + 1), bits)
        self.anchors = ClassAnchors(n_classes, n_parts, dim)
        self.n_parts, self.exchange_prob, self.diversity_weight = n_parts, exchange_prob, diversity_weight
        self.aux_loss = torch.zeros(())
        self.exchanging = True
        self.takes_labels = True

    @property
    def bits(self) -> int:
        return self.head.bits

    def parts(self, x: torch.Tensor) -> dict:
        """Global feature, part maps (at X's resolution) and part features of a batch."""
        mid = self.stem(x)
        return self._pool(mid, torch.sigmoid(self.attention(mid)))

    def _pool(self, mid: torch.Tensor, maps: torch.Tensor) -> dict:
        local = self.local(mid)
        weights = maps / (maps.sum((2, 3), keepdim=True) + 1e-6)
        parts = torch.einsum("bmhw,bdhw->bmd", weights, local)
        return {"global": self.last(mid).mean((2, 3)), "maps": maps, "parts": parts}

    def cam_layer(self) -> nn.Module:
        """The layer whose output the explorer's Grad-CAMs read: the last stage, shared by the global branch."""
        return self.last

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        out = self.parts(x)
        parts = out["parts"]
        if self.training and labels is not None:
            self.aux_loss = self.diversity_weight * (spatial_diversity(out["maps"]) + channel_diversity(parts))
            self.anchors.update(parts, labels)
            if self.exchanging and self.exchange_prob > 0:
                mask = torch.rand(parts.shape[:2], device=parts.device) < self.exchange_prob
                parts = exchange(parts, self.anchors.mean[labels].to(parts.dtype), mask)
        return self.head(torch.cat([out["global"], parts.flatten(1)], 1))

    @torch.no_grad()
    def encode(self, x):
        return hard_sign(self(x))


class OracleExchNet(ExchNet):
    """A control for the exchange: ExchNet whose part maps are the true part masks (beak, eye, wing,
    tail) instead of learned attention. The input carries the masks as channels 3.. (see
    ``attention.erasing.with_masks``) at training and at test time; the attention layer is unused."""

    takes_masks = True

    def parts(self, x: torch.Tensor) -> dict:
        image, masks = x[:, :3], x[:, 3:3 + self.n_parts]
        mid = self.stem(image)
        return self._pool(mid, F.adaptive_avg_pool2d(masks.float(), mid.shape[-2:]).to(mid.dtype))


def _out_channels(module: nn.Module) -> int:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def part_assignments(maps, masks) -> np.ndarray:
    """Which body region each part map lands on: for maps (N, M, H, W) and region masks
    (N, R, H, W) (e.g. beak, eye, wing, tail, rest of the bird, background), the region with the
    highest mean attention (energy per pixel, so a large background does not win by its size),
    (N, M) ints."""
    maps, masks = np.asarray(maps, np.float64), np.asarray(masks, np.float64)
    energy = np.einsum("nmhw,nrhw->nmr", maps, masks)
    area = masks.sum((2, 3))[:, None, :]
    density = np.divide(energy, area, out=np.full(energy.shape, -1.0), where=area > 0)
    return density.argmax(2)


def part_consistency(assignments, labels) -> float:
    """Mean over classes and parts of the share of a class's images whose part i lands on the
    class's most common region for part i: 1 when part i means one body part per class."""
    assignments, labels = np.asarray(assignments), np.asarray(labels)
    scores = []
    for c in np.unique(labels):
        a = assignments[labels == c]
        for i in range(a.shape[1]):
            scores.append(np.bincount(a[:, i]).max() / len(a))
    return float(np.mean(scores))
