"""DNNH: Network-in-Network convolution blocks, global average pooling and a binary latent layer
("A deep neural network based hashing for efficient image retrieval", abstract in
``deep_nin_hashing_abstract_refs.txt``; its latent layer follows its reference [1], Lin et al.,
"Deep learning of binary hash codes for fast image retrieval", CVPRW 2015).

Architecture:

    mlpconv block      F' = relu(W_3 * relu(W_2 * relu(W_1 *_k F)))      (NIN, its ref. [16]:
                       a k x k convolution followed by two 1 x 1 convolutions, a small MLP per pixel)
    image feature      f = GAP(F')                                      (global average pooling)
    latent layer       h = sigmoid(W_h f + b_h) in (0, 1)^c             (the embedded binary layer)
    classifier         z = W_c h + b_c, trained with softmax cross-entropy on the class labels
    code               b_k = +1 if h_k >= 0.5 else -1   (ref. [1]: threshold the latent layer at 0.5)

``forward`` returns 2h - 1 = tanh((W_h f + b_h) / 2) in (-1, 1)^c, so that the library's code
contract (b = sign(u), sign(0) = +1) gives exactly b_k = [h_k >= 0.5]: every encoder, index and
metric of the library works on DNNH unchanged.

Reading where the abstract is open: the trunk. The paper stacks NIN blocks from the pixels up;
here the mlpconv block sits on the feature map of whatever backbone the profile gives (the course's
small residual net on CPU, ResNet-50 on GPU), so DNNH starts from the same trained features as the
other systems, and ``backbones.nin()`` (``build_backbone("nin")``) gives the all-NIN trunk of the paper, small
enough for the CPU profile. With code segments (several code lengths in one latent layer), each
segment has its own classifier: the columns of W_c that read that segment (``segment_logits``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import BadOption
from ..retrieval.codes import hard_sign
from .stages import cam_layer
from .backbones import mlpconv


class DNNH(nn.Module):
    """Backbone feature map -> mlpconv block -> GAP -> sigmoid latent layer (the code) -> classifier."""

    def __init__(self, backbone: nn.Module, bits: int, n_classes: int, width: int | None = None):
        super().__init__()
        if not 1 <= bits <= 1024:
            raise BadOption(f"bits must be in 1..1024, got {bits}")
        if n_classes < 2:
            raise BadOption(f"n_classes must be at least 2, got {n_classes}")
        width = width or backbone.out_channels
        self.backbone = backbone
        self.block = mlpconv(backbone.out_channels, width, 3, 1)
        self.latent = nn.Linear(width, bits)
        self.classifier = nn.Linear(bits, n_classes)

    @property
    def bits(self) -> int:
        return self.latent.out_features

    def cam_layer(self) -> nn.Module:
        """The layer whose output the explorer's Grad-CAMs read: the backbone's last feature map."""
        return cam_layer(self.backbone)

    def forward_all(self, x) -> dict:
        """The feature map after the mlpconv block, the pooled feature f and the latent h."""
        fmap = self.block(self.backbone(x)[0])
        f = fmap.mean((2, 3))
        return {"fmap": fmap, "pooled": f, "h": torch.sigmoid(self.latent(f))}

    def forward(self, x):
        """2h - 1: relaxed codes whose sign is the thresholded latent layer."""
        return 2 * self.forward_all(x)["h"] - 1

    def segment_logits(self, h, segments) -> list:
        """Class scores of each code segment from its own bits: z_s = W_c[:, s] h_s + b_c."""
        out, start = [], 0
        for b in segments:
            out.append(h[:, start:start + b] @ self.classifier.weight[:, start:start + b].T + self.classifier.bias)
            start += b
        if start != self.bits:
            raise BadOption(f"segments {tuple(segments)} must add up to the model's {self.bits} bits")
        return out

    @torch.no_grad()
    def encode(self, x):
        return hard_sign(self(x))
