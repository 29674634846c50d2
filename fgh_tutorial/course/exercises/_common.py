"""Helpers shared by the checkers: random inputs and messages that say where an answer differs."""
from __future__ import annotations

import numpy as np


def random_codes(rng, n, bits):
    return np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8)


def as_numpy(x):
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def same_shape(got, want, what: str):
    got, want = as_numpy(got), as_numpy(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: your answer has shape {got.shape}, expected {want.shape}")
    return got, want


def first_difference(got, want, atol: float = 0.0) -> str:
    """'at index (i, j): yours 1.0, expected 0.0 (k of n entries differ)'."""
    got, want = as_numpy(got).astype(np.float64), as_numpy(want).astype(np.float64)
    bad = np.abs(got - want) > atol
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    return (f"at index {where}: yours {got[where]:.6g}, expected {want[where]:.6g} "
            f"({int(bad.sum())} of {bad.size} entries differ)")
