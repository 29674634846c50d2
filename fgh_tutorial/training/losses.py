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


# ---------------------------------------------------------------- asymmetric hashing (ADSH)
def soft_similarity(sample_labels: torch.Tensor, db_labels: torch.Tensor, similarity: str = "soft",
                    r=None) -> torch.Tensor:
    """S (m x n): 1 for the same class, -r otherwise ("soft", r = #similar / #dissimilar pairs,
    0 when there is no dissimilar pair; pass ``r`` to use one computed over a larger sample),
    or -1 otherwise ("hard")."""
    same = (sample_labels[:, None] == db_labels[None, :]).to(torch.float32)
    if similarity == "hard":
        return 2 * same - 1
    if r is None:
        dissimilar = (1 - same).sum()
        r = same.sum() / dissimilar if dissimilar > 0 else same.new_zeros(())
    return same * (1 + r) - r


def adsh_loss(u: torch.Tensor, V: torch.Tensor, S: torch.Tensor, V_omega: torch.Tensor, gamma: float = 200.0) -> torch.Tensor:
    """ADSH's loss of a batch (ADSH Eq. 4, as the official code normalises it):

        L = [ sum_ij (u_i^T v_j - c S_ij)^2 + gamma sum_i ||v_{omega_i} - u_i||^2 ] / (n B)

    u: relaxed codes of the batch (B x c); V: database codes (n x c); S: the batch's similarity
    to the database (B x n); V_omega: the database codes of the batch's own images (B x c)."""
    c = u.shape[1]
    square = (u @ V.T - c * S).pow(2).sum()
    quantisation = (V_omega - u).pow(2).sum()
    return (square + gamma * quantisation) / (V.shape[0] * u.shape[0])


def contrastive(a: torch.Tensor, b: torch.Tensor, similar: torch.Tensor, margin: float) -> torch.Tensor:
    """Hadsell et al.'s contrastive term per pair (FCAENet Eq. 6), d = ||a - b||_2:
    y d^2 + (1 - y) max(0, margin - d)^2."""
    d = (a - b).norm(dim=1)
    y = similar.to(a.dtype)
    return y * d.pow(2) + (1 - y) * (margin - d).clamp(min=0).pow(2)


def esrl(u_anchor: torch.Tensor, u_positive: torch.Tensor, u_erased: torch.Tensor,
         alpha: float = 1.0, beta: float = 1.0) -> torch.Tensor:
    """The enhanced space relation loss on (anchor, positive, erased) triplets (FCAENet Eq. 7-9):
    both pairs are positive, so only the pulling part of the contrastive term remains,

        L_ESRL = (1 / (m c)) sum_i [ alpha ||u_a - u_p||^2 + beta ||u_a - u_e||^2 ],

    with alpha and beta the per-code-length weights of Eq. 9."""
    m, c = u_anchor.shape
    ones = torch.ones(m, device=u_anchor.device)
    pulled = alpha * contrastive(u_anchor, u_positive, ones, 0.0) + beta * contrastive(u_anchor, u_erased, ones, 0.0)
    return pulled.sum() / (m * c)
