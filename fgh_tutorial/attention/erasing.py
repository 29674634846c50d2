"""What an erased view erases: SREM's attention-guided cells and the two controls that separate
SREM's idea from the attention map that feeds it.

    x_e = x * M                                                     (FCAENet Eq. 5)

``ERASERS`` builds M four ways, all filling with 0 in the normalised input (the mean colour):

    grid      SREM, the grid reading of Algorithm 1: the ``regions`` hottest s x s cells of the CAM
    anchors   SREM, the literal reading: s x s squares right and below the ``regions`` hottest pixels
    random    the same number of s x s cells as ``grid``, chosen at random (is *attention* needed?)
    parts     an oracle: one true part of each image (beak, eye, wing or tail, drawn at random),
              from the part masks the data carry (is *erasing the right thing* enough?)

Part masks travel with the images as extra channels (``with_masks``): flips and crops of the
augmentation then move masks and pixels together, and a trainer splits them off (``split_masks``)
before the network sees the image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .srem import SREM, default_region_size, srem_mask

IMAGE_CHANNELS = 3
N_PARTS = 4  # beak, eye, wing, tail: the first four mask channels (the fifth is the whole bird)


def with_masks(images: torch.Tensor, masks) -> torch.Tensor:
    """Images (N, 3, H, W) with their part masks (N, P, H, W) as channels 3.. : (N, 3 + P, H, W)."""
    masks = torch.as_tensor(masks).to(images.dtype)
    if masks.shape[0] != images.shape[0] or masks.shape[-2:] != images.shape[-2:]:
        raise ValueError(f"masks {tuple(masks.shape)} do not match images {tuple(images.shape)}")
    return torch.cat([images, masks], 1)


def split_masks(x: torch.Tensor):
    """(images, masks or None) of a batch that may carry part masks as extra channels."""
    if x.ndim != 4 or x.shape[1] <= IMAGE_CHANNELS:
        return x, None
    return x[:, :IMAGE_CHANNELS], x[:, IMAGE_CHANNELS:]


def occlude_part(images: torch.Tensor, masks, part) -> torch.Tensor:
    """Queries with one part hidden: part ``part[i]`` of image i (its mask grown by one pixel) set
    to 0, the mean colour. ``masks``: (N, P, H, W); ``part``: an int or one int per image."""
    masks = torch.as_tensor(masks).float()
    part = torch.as_tensor(part).expand(len(images)).long()
    chosen = masks[torch.arange(len(images)), part][:, None]
    grown = F.max_pool2d(chosen, 3, stride=1, padding=1)
    return images * (1 - grown).to(images.dtype)


@dataclass
class RandomCells:
    """``regions`` s x s grid cells chosen at random (the grid reading on a random attention map)."""

    num_regions: int = 10
    region_size: int = 5

    def __call__(self, model, images: torch.Tensor, masks=None):
        att = torch.rand(images.shape[0], *images.shape[-2:])
        mask = srem_mask(att, self.num_regions, self.region_size).to(images.dtype)
        return images * mask[:, None], mask


@dataclass
class PartErasing:
    """The oracle: erase one true part per image, drawn at random among the four. The trainer splits
    the masks off the images it is given (``needs_masks``)."""

    needs_masks = True

    def __call__(self, model, images: torch.Tensor, masks=None):
        if masks is None:
            raise ValueError("erasing 'parts' needs part masks carried with the images (erasing.with_masks)")
        part = torch.randint(N_PARTS, (images.shape[0],))
        erased = occlude_part(images, masks, part)
        return erased, (erased == images).all(1).to(images.dtype)


class _SREM(SREM):
    def __call__(self, model, images, masks=None):  # SREM needs no masks
        return super().__call__(model, images)


ERASERS = ("grid", "anchors", "random", "parts")


def make_eraser(kind: str, image_size: int, regions: int = 50):
    """The erasing of ``ERASERS`` for images of ``image_size`` px: ``eraser(model, x, masks) -> (x_e, M)``;
    cells of FCAENet's 32 px at 448 px, scaled."""
    s = default_region_size(image_size)
    if kind in ("grid", "anchors"):
        return _SREM(regions, s, kind)
    if kind == "random":
        return RandomCells(regions, s)
    if kind == "parts":
        return PartErasing()
    raise ValueError(f"erasing must be one of {ERASERS}, got {kind!r}")
