"""Exercises of notebook 02 (channel-mean CAM, FCAENet Eq. 3-4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ._common import first_difference, same_shape


def _check_cam(fn):
    from ...attention.cam import channel_mean_cam

    g = torch.Generator().manual_seed(3)
    for shape, size in (((2, 8, 4, 4), (16, 16)), ((1, 3, 5, 7), (20, 28))):
        fmap = torch.randn(*shape, generator=g)
        want = channel_mean_cam(fmap, size)
        got, want = same_shape(torch.as_tensor(fn(fmap, size)).float(), want, f"feature maps {shape} to {size}")
        assert abs(got - want).max() < 1e-4, (f"feature maps {shape}: {first_difference(got, want, 1e-4)}; "
                                              "Eq. 3 mean over channels, bilinear (align_corners=False), Eq. 4 min-max")


def _my_cam(fmap, size):
    a = F.interpolate(fmap.mean(1, keepdim=True), size=size, mode="bilinear", align_corners=False)[:, 0]
    low, high = a.amin((1, 2), keepdim=True), a.amax((1, 2), keepdim=True)
    return (a - low) / (high - low + 1e-8)


CHECKS = {"02.1": (_check_cam, "(feature maps B x C x h x w, (H, W)) -> B x H x W maps in [0, 1]")}
SOLUTIONS = {"02.1": _my_cam}
