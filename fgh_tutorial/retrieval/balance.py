"""Bit balance of binary codes: how evenly each bit splits a database.

For +-1 codes B (n x c), bit k is +1 on a share q_k of the items; its entropy in bits is

    H_2(q_k) = -q_k log2 q_k - (1 - q_k) log2(1 - q_k)      (1 for a balanced bit, 0 for a constant one)

and the mean over bits says how much of the code length is used: a bit that is +1 on every item
separates nothing. (The maximum-entropy loss of ``training/maxent.py`` works per code instead:
it asks the network to be unsure of every bit of a fake image.)
"""
from __future__ import annotations

import numpy as np

from .codes import as_sign_array


def bit_shares(codes) -> np.ndarray:
    """q_k, the share of +1 of each bit (c,)."""
    return (as_sign_array(codes) > 0).mean(0)


def bit_entropies(codes) -> np.ndarray:
    """H_2(q_k) of each bit, in bits (c,): 1 for a balanced bit, 0 for a constant one."""
    q = bit_shares(codes)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return np.nan_to_num(h, nan=0.0)


def mean_bit_entropy(codes) -> float:
    """The mean of ``bit_entropies``: 1 when every bit splits the items in half."""
    return float(bit_entropies(codes).mean())
