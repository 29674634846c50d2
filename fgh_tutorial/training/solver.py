"""ADSH's asymmetric solver: the discrete update of the database codes V with the network fixed.

With U (m x c) the relaxed codes of the m sampled database points (rows ``sample_index`` of the
database), S (m x n) their similarity to all n database points and gamma the quantisation weight,
ADSH minimises  sum_ij (u_i^T v_j - c S_ij)^2 + gamma sum_i ||v_{s_i} - u_i||^2  over V in {-1,1}^{n x c}
one bit (column) at a time:

    U_bar = 0 (n x c),  U_bar[sample_index] = U
    Q = -2 c S^T U - 2 gamma U_bar
    for k = 1..c:   V[:, k] = sign( -Q[:, k] - 2 V[:, !k] (U[:, !k]^T U[:, k]) )    (sign(0) := +1)

Similarity: "soft" (the official code's default) S = 1 for the same class and -r otherwise, with
r = #similar pairs / #dissimilar pairs (r := 0 when there is no dissimilar pair, where the official
code divides by zero); "hard" (the paper) S = +1 / -1.

For single-label data S is never built: with C_y the sum of the u_i of class y over the sample
and T the sum of all u_i,  (S^T U)_j = (1 + r) C_{y_j} - r T   -- O((m + n) c) instead of O(m n c).
The bit loop never copies V: V[:, !k] (U[:, !k]^T U[:, k]) = V G[:, k] - V[:, k] G[k, k] with
G = U^T U, and V is kept bit-major so that each column is contiguous. Torch, one code path for
CPU and GPU.
"""
from __future__ import annotations

import torch

from ..errors import BadOption
from ..retrieval.codes import hard_sign

SIMILARITIES = ("soft", "hard")


def _labels(labels, device):
    y = torch.as_tensor(labels, device=device)
    if y.ndim != 1:
        raise BadOption(f"db_labels must be class ids (n,), got shape {tuple(y.shape)}")
    _, y = torch.unique(y, return_inverse=True)
    return y


def similarity_ratio(sample_labels: torch.Tensor, db_labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """r = #similar / #dissimilar pairs between the sample and the database (from class counts)."""
    m_c = torch.bincount(sample_labels, minlength=n_classes).double()
    n_c = torch.bincount(db_labels, minlength=n_classes).double()
    similar = (m_c * n_c).sum()
    dissimilar = len(sample_labels) * len(db_labels) - similar
    return similar / dissimilar if dissimilar > 0 else torch.zeros((), dtype=torch.float64, device=similar.device)


def st_u(U: torch.Tensor, sample_labels: torch.Tensor, db_labels: torch.Tensor, n_classes: int,
         similarity: str = "soft") -> torch.Tensor:
    """S^T U (n x c) from per-class sums of U: (1 + r) C_{y_j} - r T, r = 1 when "hard"."""
    sums = torch.zeros(n_classes, U.shape[1], dtype=U.dtype, device=U.device).index_add_(0, sample_labels, U)
    total = U.sum(0)
    r = similarity_ratio(sample_labels, db_labels, n_classes).to(U.dtype) if similarity == "soft" else 1.0
    return (1 + r) * sums[db_labels] - r * total


def linear_term(U: torch.Tensor, sample_index: torch.Tensor, db_labels: torch.Tensor, gamma: float = 200.0,
                similarity: str = "soft") -> torch.Tensor:
    """Q = -2 c S^T U - 2 gamma U_bar (n x c), the part of Eq. 16 that is linear in V; ``db_labels``
    are class ids 0..K-1 (n,), ``sample_index`` the rows of the database that U encodes."""
    n_classes = int(db_labels.max()) + 1 if len(db_labels) else 0
    Q = -2 * U.shape[1] * st_u(U, db_labels[sample_index], db_labels, n_classes, similarity)
    return Q.index_add_(0, sample_index, -2 * gamma * U)  # -2 gamma U_bar, without building U_bar


def update_database_codes(V, U, sample_index, db_labels, gamma: float = 200.0, similarity: str = "soft",
                          dtype=torch.float64) -> torch.Tensor:
    """One ADSH V-step: returns the new database codes (n x c, +-1 with sign(0) := +1, the code
    contract; the official code leaves a 0 there), in V's floating dtype (float32 for other
    input). Inputs may be numpy arrays or tensors; the computation runs in ``dtype`` on U's device
    (pass CUDA tensors to use the GPU)."""
    if similarity not in SIMILARITIES:
        raise BadOption(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
    U = torch.as_tensor(U)
    device = U.device
    out_dtype = V.dtype if isinstance(V, torch.Tensor) and V.is_floating_point() else torch.float32
    U = U.to(dtype)
    V = torch.as_tensor(V, device=device).to(dtype)
    index = torch.as_tensor(sample_index, device=device, dtype=torch.long)
    if V.ndim != 2 or U.ndim != 2 or V.shape[1] != U.shape[1]:
        raise BadOption(f"V (n x c) and U (m x c) must share c, got {tuple(V.shape)} and {tuple(U.shape)}")
    if len(index) != len(U):
        raise BadOption(f"sample_index has {len(index)} entries for {len(U)} rows of U")
    if len(torch.unique(index)) != len(index):
        raise BadOption("sample_index must not repeat a database point")
    y = _labels(db_labels, device)
    if len(y) != len(V):
        raise BadOption(f"db_labels has {len(y)} entries for {len(V)} database codes")
    Q = linear_term(U, index, y, gamma, similarity)
    G = U.T @ U
    Vt, Qt = V.T.contiguous(), Q.T.contiguous()  # bit-major: each bit's column is contiguous
    for k in range(V.shape[1]):  # Eq. 17, one bit at a time
        Vt[k] = hard_sign(-(Qt[k] + 2 * (G[:, k] @ Vt - Vt[k] * G[k, k])))  # sign(0) := +1
    return Vt.T.to(out_dtype)
