"""DNNH's training: the latent layer learns the codes through the classification loss
(``models/dnnh.py``; its reference [1], Lin et al. CVPRW 2015, fine-tunes the sigmoid latent layer
with the classifier above it and thresholds it at 0.5).

    z_s = W_c[:, s] h_s + b_c                              class scores of code segment s
    L   = (1/|S|) sum_s  -(1/B) sum_i log softmax(z_s(x_i))_{y_i}      (softmax cross-entropy)

The codes are never compared with each other during training: images of a class share codes because
the classifier needs their latent layers to be alike. Database codes are the network's codes of the
database images, b = [h >= 0.5] (``training/symmetric.py``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import BadOptionType
from .config import TrainConfig
from .symmetric import train_symmetric


def latent_classification_loss(logits, labels: torch.Tensor) -> torch.Tensor:
    """Mean over segments of the softmax cross-entropy of each segment's class scores."""
    logits = list(logits)
    return sum(F.cross_entropy(z, labels) for z in logits) / len(logits)


def train_dnnh(model, images, labels, cfg: TrainConfig, **kwargs):
    """Train a ``DNNH`` network; returns (database codes +-1, history). ``kwargs`` go to
    ``train_symmetric`` (checkpoint_dir, val, progress, callbacks)."""
    if not hasattr(model, "segment_logits"):
        raise BadOptionType(f"the dnnh trainer needs a DNNH network (arch 'dnnh'), got {type(model).__name__}")

    def batch_loss(model, x, y, g):
        h = model.forward_all(x)["h"]
        return latent_classification_loss(model.segment_logits(h, cfg.segments), y)

    return train_symmetric(model, images, labels, cfg, batch_loss, name="dnnh", **kwargs)
