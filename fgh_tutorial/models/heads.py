"""The hash layer and the hashing model.

Training uses the continuous relaxation  u = tanh(W f + b)  in (-1, 1)^c;
inference the binary code               b = sign(u)     in {-1, +1}^c   (sign(0) := +1).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import BadOption
from ..retrieval.codes import hard_sign
from .stages import cam_layer


class HashHead(nn.Module):
    """u = tanh(W f + b): a linear map from the pooled feature to c relaxed bits."""

    def __init__(self, in_features: int, bits: int):
        super().__init__()
        if not 1 <= bits <= 1024:
            raise BadOption(f"bits must be in 1..1024, got {bits}")
        self.bits = bits
        self.fc = nn.Linear(in_features, bits)

    def forward(self, f):
        return torch.tanh(self.fc(f))


class HashingModel(nn.Module):
    """Backbone + hash head. ``forward`` returns u (relaxed codes); ``encode`` returns sign(u)."""

    def __init__(self, backbone: nn.Module, bits: int, n_classes: int | None = None):
        super().__init__()  # n_classes: unused (every network of a system takes it)
        self.backbone = backbone
        self.head = HashHead(backbone.out_channels, bits)

    @property
    def bits(self) -> int:
        return self.head.bits

    def forward(self, x):
        _, pooled = self.backbone(x)
        return self.head(pooled)

    def cam_layer(self) -> nn.Module:
        """The layer whose output the explorer's Grad-CAMs read: the backbone's last feature map."""
        return cam_layer(self.backbone)

    def forward_all(self, x) -> dict:
        """Everything the attention notebooks need: feature map, pooled feature and u."""
        fmap, pooled = self.backbone(x)
        return {"fmap": fmap, "pooled": pooled, "u": self.head(pooled)}

    @torch.no_grad()
    def encode(self, x):
        return hard_sign(self(x))
