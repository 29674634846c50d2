"""Exercises of notebook 03 (SREM, FCAENet Algorithm 1)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._common import first_difference, same_shape


def _srem_cases():
    g = torch.Generator().manual_seed(4)
    smooth = F.interpolate(torch.rand(2, 1, 4, 4, generator=g), size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    return [("3 random 16x16 maps, 5 regions of 3 px", torch.rand(3, 16, 16, generator=g), 5, 3),
            ("2 random 20x26 maps (not a multiple of s), 7 regions of 4 px", torch.rand(2, 20, 26, generator=g), 7, 4),
            ("2 smooth 32x32 maps, 10 regions of 5 px", smooth, 10, 5),
            ("2 random 12x12 maps, 100 regions of 4 px (more than there are cells)", torch.rand(2, 12, 12, generator=g), 100, 4),
            ("2 random 10x10 maps, 0 regions", torch.rand(2, 10, 10, generator=g), 0, 3)]


def _check_srem_mask(fn):
    from ...attention.srem import srem_mask

    for what, att, n, s in _srem_cases():
        want = srem_mask(att, n, s)
        got, want_np = same_shape(torch.as_tensor(fn(att.clone(), n, s)).float(), want, what)
        if (got == want_np).all():
            continue
        if (got == 1 - want_np).all():
            raise AssertionError(f"{what}: your mask is inverted; M is 1 where the image is kept, 0 where erased")
        if (got == srem_mask(att, n, s, mode="anchors").numpy()).all():
            raise AssertionError(f"{what}: that is the 'anchors' reading (a square right and below each of the n "
                                 "hottest pixels); erase instead the grid cell of each ranked pixel until n cells are gone")
        raise AssertionError(f"{what}: mask differs {first_difference(got, want_np)}. Hint: {_hint(got, want_np, n, s)}")


def _hint(got, want, n, s):
    """Which step of Algorithm 1 an answer most likely misses."""
    b, h, w = want.shape
    gh, gw = -(-h // s), -(-w // s)
    padded = np.full((b, gh * s, gw * s), np.nan)
    padded[:, :h, :w] = got
    cells = padded.reshape(b, gh, s, gw, s).transpose(0, 1, 3, 2, 4).reshape(b, gh * gw, s * s)
    low, high = np.nanmin(cells, 2), np.nanmax(cells, 2)
    if not (low == high).all() or not np.isin(got, (0, 1)).all():
        return "erase whole cells of an s x s grid that starts at the top-left pixel; M holds only 0 and 1"
    erased = (low == 0).sum(1)
    if (erased != min(n, gh * gw)).any():
        return (f"erase exactly num_regions = {n} distinct cells (all cells when there are fewer); "
                f"yours erases {erased.tolist()} cells per image")
    return ("the right number of cells, but not the hottest ones: rank each cell by its hottest pixel, the "
            "partial cells at the right and bottom border too (pad with zeros to whole cells, crop back)")


def _srem_mask(attention, num_regions, region_size):
    """Algorithm 1 read as 'erase the grid cell of each ranked pixel', with plain loops."""
    b, h, w = attention.shape
    s = region_size
    gh, gw = -(-h // s), -(-w // s)
    padded = F.pad(attention, (0, gw * s - w, 0, gh * s - h))  # 1. zeros on the right and bottom
    mask = torch.ones(b, gh * s, gw * s)
    for i in range(b):
        ranking = torch.argsort(padded[i].flatten(), descending=True, stable=True)  # 2. rank the positions
        erased = set()
        for p in ranking.tolist():  # 3. erase the cell of each ranked position until num_regions are gone
            if len(erased) >= num_regions:
                break
            row, col = p // (gw * s) // s, p % (gw * s) // s
            if (row, col) not in erased:
                erased.add((row, col))
                mask[i, row * s:(row + 1) * s, col * s:(col + 1) * s] = 0
    return mask[:, :h, :w]  # 4. crop back to H x W


CHECKS = {"03.1": (_check_srem_mask, "(attention B x H x W, num_regions, region_size) -> mask B x H x W, 1 = kept")}
SOLUTIONS = {"03.1": _srem_mask}
