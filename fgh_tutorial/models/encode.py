"""Turning images into codes and features, batch by batch, without gradients."""
from __future__ import annotations

import numpy as np
import torch

from ..data.loader import encode_loader
from ..retrieval.codes import binarize
from .device import check_device


def _batches(images, batch_size):
    if isinstance(images, torch.Tensor):
        for s in range(0, len(images), batch_size):
            yield images[s:s + batch_size]
    else:  # any Dataset of (x, y), decoded by worker processes
        for batch in encode_loader(images, batch_size):
            yield batch[0]


@torch.no_grad()
def relaxed_codes(model, images, batch_size: int = 256, device: str | None = None) -> torch.Tensor:
    """u = tanh(W f + b) of every image (a tensor N x 3 x H x W, or a Dataset of (x, y))."""
    device = check_device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = [model(x.to(device)).float().cpu() for x in _batches(images, batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.bits)


def encode(model, images, batch_size: int = 256, device: str | None = None) -> np.ndarray:
    """Binary codes sign(u) as an int8 numpy array (N x bits) of +-1."""
    return binarize(relaxed_codes(model, images, batch_size, device).numpy())


@torch.no_grad()
def pooled_features(backbone, images, batch_size: int = 256, device: str | None = None) -> np.ndarray:
    """The pooled backbone feature of every image, float32 (N x C)."""
    device = check_device(device) if device is not None else next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()
    out = [backbone(x.to(device))[1].float().cpu() for x in _batches(images, batch_size)]
    backbone.train(was_training)
    return torch.cat(out).numpy()
