"""Two-pyramid hashing: a vertical pyramid over the high-layer features and a horizontal pyramid
over several low-layer feature maps, fused by consensus fusion into the hash layer (abstract in
``deep_hashing_abstracts.txt``, first entry).

On a backbone whose ``features`` is a sequence of stages, take the outputs of the last L + 1 stages:
F_1 .. F_L (low layers, high resolution: the subtle local details) and F_top (the last stage):

    vertical pyramid    v = [P_1(F_top); P_2(F_top); P_4(F_top)]        multi-scale pooling: P_s sums
                        the map over the cells of an s x s grid (the whole image, its quadrants, a
                        4 x 4 grid) and divides by the image's area, i.e. cell means weighted by
                        their share 1/s^2 of the image, so every level weighs as much as the
                        global average; a_v = W_v v
    horizontal pyramid  z_l = vec(P_g(relu(BN(R_l F_l))))              per low layer l: a 1 x 1
                        convolution R_l to d channels, then a g x g grid that keeps where each
                        feature is (the structural information), a_l = W_l z_l in R^c
    consensus fusion    a_h = (1/L) sum_l a_l                          the layers vote on each bit
                        u = tanh(a_v + a_h)                             the hash layer
    consensus loss      L_con = (1/L) sum_l (1/c) ||tanh(a_l) - sg(u)||^2
                        (sg: no gradient) each low layer's own code is pulled towards the fused code,
                        so that the layers agree ("capture all subtle information from several
                        low layers": no layer may be ignored by the fusion)

Readings where the abstract is open (it names the parts, not their equations): the vertical pyramid
as spatial-pyramid pooling of the top map (levels 1, 2, 4, after SPP-net), each level weighted by its
cells' share of the image; the horizontal pyramid as grid-pooled low-layer maps; consensus fusion as
the mean of the per-layer projections plus the agreement loss above. The weights of the finer levels
and of the low layers start at zero, so that training starts from a hash layer on the pooled feature
(like ADSH's) and lets the details grow in. Both choices come from a trial on SynthBirds (one
iteration of 1,000 images from notebook 01's backbone, validation mAP over 12-48 bits): unweighted
cell means gave 0.04 against ADSH's 0.20, the 20 position-dependent cells outgrowing the one global
cell; weighted by 1/s^2, 0.19; the horizontal pyramid alone, added to the global cell, 0.19 against
0.16 with its weights frozen at zero. The network outputs
relaxed codes u, so any trainer of the library trains it;
the registry trains it with ADSH's asymmetric loop, so that against ADSH only the network differs.
``aux_loss`` holds consensus_weight * L_con of the last training forward pass (the trainers add it).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadOption
from ..retrieval.codes import hard_sign
from .stages import cam_layer


def pyramid_pool(fmap: torch.Tensor, levels=(1, 2, 4)) -> torch.Tensor:
    """[P_1(F); P_2(F); ...]: for each level s, the cell means of an s x s grid times 1/s^2 (cell sums
    over the image's area), flattened (B, C sum s^2)."""
    return torch.cat([F.adaptive_avg_pool2d(fmap, s).flatten(1) / (s * s) for s in levels], 1)


def consensus_fusion(projections) -> torch.Tensor:
    """a_h = (1/L) sum_l a_l of the low layers' projections (each B x c)."""
    return torch.stack(list(projections)).mean(0)


def consensus_loss(projections, u: torch.Tensor) -> torch.Tensor:
    """L_con = (1/L) sum_l (1/c) ||tanh(a_l) - sg(u)||^2, averaged over the batch."""
    target = u.detach()
    return torch.stack([(torch.tanh(a) - target).pow(2).mean() for a in projections]).mean()


def _out_channels(stage: nn.Module) -> int:
    convs = [m for m in stage.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise BadOption("two-pyramid hashing: a backbone stage without convolutions")
    return convs[-1].out_channels


class TwoPyramid(nn.Module):
    """Vertical and horizontal pyramids on a backbone, fused into one hash layer."""

    def __init__(self, backbone: nn.Module, bits: int, n_classes: int | None = None, low_layers: int = 2,
                 levels=(1, 2, 4), grid: int = 4, low_channels: int = 32, consensus_weight: float = 0.1):
        super().__init__()
        if not 1 <= bits <= 1024:
            raise BadOption(f"bits must be in 1..1024, got {bits}")
        features = getattr(backbone, "features", None)
        if not isinstance(features, nn.Sequential) or len(features) < low_layers + 1:
            raise BadOption("two-pyramid hashing needs a backbone whose features are a Sequential of at least "
                             f"{low_layers + 1} stages (minires, nin or a ResNet)")
        self.backbone, self.low_layers = backbone, low_layers
        self.levels, self.grid, self.consensus_weight = tuple(levels), grid, consensus_weight
        top = backbone.out_channels
        self.vertical = nn.Linear(top * sum(s * s for s in self.levels), bits)
        self.reduce = nn.ModuleList(nn.Sequential(nn.Conv2d(_out_channels(s), low_channels, 1, bias=False),
                                                  nn.BatchNorm2d(low_channels), nn.ReLU(inplace=True))
                                    for s in list(features.children())[-(low_layers + 1):-1])
        self.horizontal = nn.ModuleList(nn.Linear(low_channels * grid * grid, bits) for _ in range(low_layers))
        with torch.no_grad():  # the finer levels and the low layers start at zero (see the docstring)
            first = top * self.levels[0] ** 2  # the first level's columns: a hash layer's initial scale
            nn.init.uniform_(self.vertical.weight[:, :first], -first ** -0.5, first ** -0.5)
            self.vertical.weight[:, first:] = 0
            for lin in self.horizontal:
                lin.weight.zero_()
                lin.bias.zero_()
        self.aux_loss = torch.zeros(())

    @property
    def bits(self) -> int:
        return self.vertical.out_features

    def cam_layer(self) -> nn.Module:
        """The layer whose output the explorer's Grad-CAMs read: the backbone's last feature map."""
        return cam_layer(self.backbone)

    def forward_all(self, x) -> dict:
        """Low-layer maps, the top map, a_v, the per-layer a_l and u."""
        stages, maps, h = list(self.backbone.features.children()), [], x
        for i, stage in enumerate(stages):
            h = stage(h)
            if i >= len(stages) - self.low_layers - 1:
                maps.append(h)
        a_v = self.vertical(pyramid_pool(maps[-1], self.levels))
        a_l = [lin(F.adaptive_avg_pool2d(red(m), self.grid).flatten(1))
               for m, red, lin in zip(maps[:-1], self.reduce, self.horizontal)]
        u = torch.tanh(a_v + consensus_fusion(a_l))
        return {"low": maps[:-1], "fmap": maps[-1], "a_v": a_v, "a_l": a_l, "u": u}

    def forward(self, x):
        out = self.forward_all(x)
        if self.training:
            self.aux_loss = self.consensus_weight * consensus_loss(out["a_l"], out["u"])
        return out["u"]

    @torch.no_grad()
    def encode(self, x):
        return hard_sign(self(x))
