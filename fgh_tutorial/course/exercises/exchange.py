"""Exercises of notebook 04 (ExchNet's feature exchange)."""
from __future__ import annotations

import torch

from ._common import same_shape


def _check_exchange(fn):
    from ...models.exchnet import exchange

    g = torch.Generator().manual_seed(5)
    for shape in ((3, 4, 5), (1, 2, 7)):
        parts, anchors = torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)
        mask = torch.rand(shape[:2], generator=g) < 0.5
        want = exchange(parts, anchors, mask)
        got, _ = same_shape(torch.as_tensor(fn(parts, anchors, mask)), want, f"parts {shape}")
        if torch.equal(torch.as_tensor(got), exchange(anchors, parts, mask)):
            raise AssertionError("parts and anchors swapped: the anchor replaces the part where the mask is True")
        assert torch.equal(torch.as_tensor(got), want), "anchors where the mask is true, parts elsewhere"


def _my_exchange(parts, anchors, mask):
    return parts * ~mask[..., None] + anchors * mask[..., None]


CHECKS = {"04.1": (_check_exchange, "(parts B x M x D, anchors B x M x D, mask B x M) -> exchanged parts")}
SOLUTIONS = {"04.1": _my_exchange}
