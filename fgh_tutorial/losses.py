"""Losses for learning hash codes.

Central similarity (Yuan et al., CVPR 2020), the loss of the course's first trained hash
head: every class c gets a hash centre h_c in {-1, +1}^K, far from the other centres, and
each relaxed code u = tanh(.) is pulled to its class centre bit by bit,

    L_cs = -(1/K) sum_k [ t_k log p_k + (1 - t_k) log(1 - p_k) ],  p = (u + 1)/2, t = (h_c + 1)/2
    L_q  = (1/K) sum_k (|u_k| - 1)^2                                 (quantisation)
    L    = L_cs + lambda L_q
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def hash_centres(n_classes: int, bits: int, seed: int = 0, tries: int = 64) -> torch.Tensor:
    """n_classes random +-1 centres: of ``tries`` draws, the one with the largest minimum
    pairwise Hamming distance (about bits/2 - a few for random codes)."""
    g = torch.Generator().manual_seed(seed)
    best, best_min = None, -1
    for _ in range(tries):
        c = torch.where(torch.rand(n_classes, bits, generator=g) < 0.5, -1.0, 1.0)
        d = (bits - c @ c.T) / 2
        d.fill_diagonal_(bits)
        if d.min() > best_min:
            best, best_min = c, d.min()
    return best


def central_similarity_loss(u: torch.Tensor, labels: torch.Tensor, centres: torch.Tensor,
                            quantization: float = 0.05) -> torch.Tensor:
    """L_cs + lambda L_q of the relaxed codes ``u`` (B x K) against their class centres."""
    target = (centres[labels] + 1) / 2
    p = ((u + 1) / 2).clamp(1e-6, 1 - 1e-6)
    return F.binary_cross_entropy(p, target) + quantization * (u.abs() - 1).pow(2).mean()
