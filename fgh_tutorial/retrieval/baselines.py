"""Unsupervised hashing baselines on backbone features, and a colour-histogram feature.

LSH (random hyperplanes):  b = sign(W^T (x - mu)),  W ~ N(0, 1)^{d x c}.
ITQ (Gong & Lazebnik, CVPR 2011): project on the top-c principal directions, V = (X - mu) P,
then alternate  B = sign(V R)  and  R = argmin_R ||B - V R||_F over rotations, solved by the
SVD of V^T B = S Omega S_hat^T  ->  R = S S_hat^T  (orthogonal Procrustes).
"""
from __future__ import annotations

import numpy as np

from ..errors import BadOption
from .codes import binarize


def _as_features(x, name="features"):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0:
        raise BadOption(f"{name} must be a non-empty 2-D array (n x d), got shape {x.shape}")
    return x


class LSH:
    """Sign random projections of centred features."""

    def __init__(self, bits: int, seed: int = 0):
        self.bits, self.seed = bits, seed

    def fit(self, features):
        x = _as_features(features)
        self.mean_ = x.mean(0)
        self.projection_ = np.random.default_rng(self.seed).standard_normal((x.shape[1], self.bits))
        return self

    def encode(self, features) -> np.ndarray:
        return binarize((_as_features(features) - self.mean_) @ self.projection_)


class ITQ:
    """Iterative quantisation: PCA to ``bits`` dimensions, then a learned rotation."""

    def __init__(self, bits: int, iterations: int = 50, seed: int = 0):
        self.bits, self.iterations, self.seed = bits, iterations, seed

    def fit(self, features):
        x = _as_features(features)
        if self.bits > min(x.shape):
            raise BadOption(f"ITQ needs at least {self.bits} samples and dimensions, got {x.shape}")
        self.mean_ = x.mean(0)
        _, _, vt = np.linalg.svd(x - self.mean_, full_matrices=False)
        self.pca_ = vt[: self.bits].T
        v = (x - self.mean_) @ self.pca_
        rot, _ = np.linalg.qr(np.random.default_rng(self.seed).standard_normal((self.bits, self.bits)))
        self.loss_ = []
        for _ in range(self.iterations):
            b = binarize(v @ rot).astype(np.float64)
            self.loss_.append(float(((b - v @ rot) ** 2).sum()))
            s, _, sh_t = np.linalg.svd(v.T @ b)
            rot = s @ sh_t
        self.rotation_ = rot
        return self

    def encode(self, features) -> np.ndarray:
        return binarize((_as_features(features) - self.mean_) @ self.pca_ @ self.rotation_)


def colour_histograms(images: np.ndarray, bins: int = 8) -> np.ndarray:
    """Joint RGB histogram of uint8 images (N, H, W, 3), ``bins`` levels per channel,
    L1-normalised: a global colour descriptor with no notion of parts."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise BadOption(f"images must be (N, H, W, 3), got {images.shape}")
    q = (images.astype(np.int32) * bins) // 256
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    flat = idx.reshape(len(images), -1) + (bins ** 3) * np.arange(len(images))[:, None]
    hist = np.bincount(flat.ravel(), minlength=len(images) * bins ** 3).reshape(len(images), -1)
    return hist / hist.sum(1, keepdims=True)
