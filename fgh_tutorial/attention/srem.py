"""SREM, the selective region erasing module of FCAENet (Algorithm 1, Eq. 5).

Given the normalised attention map A of an image (channel-mean CAM, Eq. 3-4):

1. pad A with zeros on the right and the bottom by the region size s, so that a square anchored
   at any pixel fits;
2. rank the positions of the padded map by attention, hottest first;
3. going down the ranking, erase the s x s square whose top-left corner is the position, until
   ``num_regions`` squares are erased;
4. crop the mask M (1 = kept, 0 = erased) back to H x W, and  x_e = x * M   (Eq. 5).

Step 3 is where the text leaves a choice. Read literally ("anchors"), the ``num_regions``
hottest *pixels* anchor the squares; on a smooth map they are neighbours, the squares pile onto
one blob and the region number hardly changes what is erased. The text also says SREM erases
"the grids": we read the padded map as a grid of s x s cells, rank the pixels, and erase the
cell of each ranked pixel until ``num_regions`` distinct cells are gone (``mode="grid"``, the
default). Then 50 regions of 32 px erase up to 50 x 32^2 pixels, and Tables 3-4's region number
and size mean what they say. Ties in attention go to the lower (row-major) position.

Erased pixels become 0 in the normalised input, i.e. the dataset's mean colour.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import BadOption
from .cam import attention_maps


def default_region_size(image_size: int) -> int:
    """FCAENet's 32 px squares at 448 px input, scaled with the image size."""
    return max(1, round(32 * image_size / 448))


def _squares(seeds: torch.Tensor, s: int) -> torch.Tensor:
    """Dilate anchor pixels (B, H', W') into s x s squares that extend right and down."""
    x = F.pad(seeds[:, None].float(), (s - 1, 0, s - 1, 0))
    return F.max_pool2d(x, s, stride=1)[:, 0] > 0


MODES = ("grid", "anchors")


def srem_mask(attention: torch.Tensor, num_regions: int = 50, region_size: int = 32, mode: str = "grid") -> torch.Tensor:
    """Algorithm 1 on a batch of attention maps (B, H, W): the mask M (B, H, W), 1 = kept."""
    if attention.ndim != 3:
        raise BadOption(f"attention must be (B, H, W), got shape {tuple(attention.shape)}")
    if num_regions < 0 or region_size < 1:
        raise BadOption(f"need num_regions >= 0 and region_size >= 1, got {num_regions}, {region_size}")
    if mode not in MODES:
        raise BadOption(f"mode must be one of {MODES}, got {mode!r}")
    b, h, w = attention.shape
    s = region_size
    if mode == "anchors":
        padded = F.pad(attention.float(), (0, s, 0, s))  # step 1: zeros on the right and bottom
        flat = padded.reshape(b, -1)
        order = torch.sort(flat, dim=1, descending=True, stable=True).indices[:, :num_regions]  # step 2
        seeds = torch.zeros_like(flat, dtype=torch.bool).scatter_(1, order, True).view_as(padded)
        erased = _squares(seeds, s)  # step 3: a square to the right and below each anchor
    else:
        gh, gw = -(-h // s), -(-w // s)
        padded = F.pad(attention.float(), (0, gw * s - w, 0, gh * s - h))  # step 1: whole cells
        cells = padded.reshape(b, gh, s, gw, s).permute(0, 1, 3, 2, 4).reshape(b, gh * gw, s * s)
        # step 2: a cell's rank is that of its hottest pixel; ties go to the lower pixel position
        best, at = cells.max(2)
        row = torch.arange(gh, device=at.device).repeat_interleave(gw) * s + at // s
        col = torch.arange(gw, device=at.device).repeat(gh) * s + at % s
        position = row * (gw * s) + col
        order = torch.argsort(position, dim=1)  # sort by position, then stably by heat
        order = order.gather(1, torch.sort(best.gather(1, order), dim=1, descending=True, stable=True).indices)
        chosen = torch.zeros(b, gh * gw, dtype=torch.bool, device=attention.device)
        chosen.scatter_(1, order[:, :num_regions], True)  # step 3: erase whole cells
        erased = chosen.view(b, gh, 1, gw, 1).expand(b, gh, s, gw, s).reshape(b, gh * s, gw * s)
    return (~erased[:, :h, :w]).to(attention.dtype)  # step 4


@dataclass
class SREM:
    """Erase the most attended regions of a batch: ``SREM(50, 5)(model, x) -> (x_e, M)``."""

    num_regions: int = 50
    region_size: int = 32
    mode: str = "grid"

    @classmethod
    def for_image_size(cls, image_size: int, num_regions: int = 50, mode: str = "grid") -> "SREM":
        return cls(num_regions, default_region_size(image_size), mode)

    def __call__(self, model, images: torch.Tensor):
        was_training = model.training
        attention = attention_maps(model.eval(), images)  # eval: no batch-norm statistics update
        model.train(was_training)
        mask = srem_mask(attention, self.num_regions, self.region_size, self.mode)
        return images * mask[:, None], mask  # Eq. 5
