"""Attention maps of a hashing model: FCAENet's channel-mean CAM, the Grad-CAM family through
the grad-cam package with targets made for hash codes, and scores against part masks.

Channel-mean CAM (FCAENet Eq. 3-4), F the last feature map (C x h x w):

    A = (1/C) sum_c F_c                      (Eq. 3)
    A' = bilinear upsampling of A to H x W
    M = (A' - min A') / (max A' - min A' + eps)   (Eq. 4)

It needs no gradient and runs batched on any device, so SREM uses it during training. The
Grad-CAM family needs a *target*: a scalar of the model's output. A hashing model outputs relaxed
codes u, so the targets here are code similarities, not class scores.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import BadOption
from ..retrieval.codes import hard_sign

METHODS = ("channel_mean", "gradcam", "gradcam++", "eigencam", "layercam")


def channel_mean_cam(fmap: torch.Tensor, size, eps: float = 1e-8) -> torch.Tensor:
    """FCAENet Eq. 3-4: (B, C, h, w) feature maps -> (B, H, W) maps in [0, 1]."""
    if fmap.ndim != 4:
        raise BadOption(f"fmap must be (B, C, h, w), got shape {tuple(fmap.shape)}")
    size = (size, size) if isinstance(size, int) else tuple(size)
    a = fmap.float().mean(1, keepdim=True)  # Eq. 3
    a = F.interpolate(a, size=size, mode="bilinear", align_corners=False)[:, 0]
    low = a.amin((1, 2), keepdim=True)
    high = a.amax((1, 2), keepdim=True)
    return (a - low) / (high - low + eps)  # Eq. 4


@torch.no_grad()
def attention_maps(model, images: torch.Tensor) -> torch.Tensor:
    """Channel-mean CAMs of a HashingModel's last feature map, at the images' size."""
    fmap, _ = model.backbone(images)
    return channel_mean_cam(fmap, images.shape[-2:])


# ---------------------------------------------------------------- targets for hash codes
class CodeSimilarity:
    """Target u . b: how strongly the image's relaxed code agrees with a code b (a query's code,
    or a class's hash centre). Its gradient shows what makes the image retrieve near b."""

    def __init__(self, code):
        self.code = torch.as_tensor(code, dtype=torch.float32)

    def __call__(self, output):
        return (output * self.code.to(output.device)).sum()


class CodeBit:
    """Target s * u_k: what drives bit k towards the sign s."""

    def __init__(self, bit: int, sign: float = 1.0):
        self.bit, self.sign = int(bit), float(sign)

    def __call__(self, output):
        return self.sign * output[self.bit]


def _cam_class(method):
    import pytorch_grad_cam as pgc

    classes = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "eigencam": pgc.EigenCAM,
               "layercam": pgc.LayerCAM}
    if method not in classes:
        raise BadOption(f"unknown CAM method {method!r}; choose one of {METHODS}")
    return classes[method]


def cam_layers(model) -> dict:
    """The layers a CAM can be taken from: the last three stages of the backbone."""
    children = list(model.backbone.features.children())
    names = ["last stage", "stage -2", "stage -3"]
    return {name: children[-1 - i] for i, name in enumerate(names) if i < len(children)}


def compute_cams(model, images: torch.Tensor, method: str = "channel_mean", targets=None, layer=None) -> np.ndarray:
    """Attention maps (B, H, W) in [0, 1] of ``images`` by ``method`` (``METHODS``).

    ``targets``: one callable per image for the gradient methods (default: each image's own code,
    ``CodeSimilarity(sign(u))``). ``layer``: a module of the backbone (default: the last stage).
    The model's train/eval mode is restored afterwards (grad-cam switches it to eval).
    """
    if method == "channel_mean":
        if layer is not None:
            raise BadOption("channel_mean uses the backbone's last feature map; choose a gradient method for other layers")
        return attention_maps(model, images).cpu().numpy()
    cls = _cam_class(method)
    layer = layer if layer is not None else model.backbone.features[-1]
    was_training = model.training
    if targets is None:
        with torch.no_grad():
            codes = hard_sign(model.eval()(images))
        targets = [CodeSimilarity(c) for c in codes]
    with cls(model=model, target_layers=[layer]) as cam:
        maps = cam(input_tensor=images, targets=targets)
    model.train(was_training)
    return np.asarray(maps, dtype=np.float32)


# ---------------------------------------------------------------- scores against part masks
def energy_share(cams, masks) -> np.ndarray:
    """Per image: the share of CAM energy inside the mask, sum(A * m) / sum(A)."""
    cams, masks = np.asarray(cams, np.float64), np.asarray(masks, bool)
    total = cams.sum((1, 2))
    return np.divide((cams * masks).sum((1, 2)), total, out=np.zeros(len(cams)), where=total > 0)


def pointing_hits(cams, masks) -> np.ndarray:
    """Per image: does the CAM's maximum fall inside the mask (pointing game)?"""
    cams, masks = np.asarray(cams), np.asarray(masks, bool)
    flat = cams.reshape(len(cams), -1).argmax(1)
    return masks.reshape(len(masks), -1)[np.arange(len(masks)), flat]
