"""Frozen-backbone mode: hashing a folder of photos on a laptop CPU in minutes.

The backbone is not trained. Its pooled feature of every database, validation and query image is
computed once (the slow part: one forward pass per image) and cached, then only the hash layer is
learned, asymmetrically, with the loop, steps and solver of fine-tuning (``asymmetric.py``):

    f = pooled backbone feature (cached)        z = (f - mu) / sigma   (database statistics)
    u = tanh(W z + b)                           one segment of W per code length (12, 24, 32, 48 ...)
    ADSH loss on u against V, V-step, model selection on the validation split, as in fine-tuning

and is then folded into a plain hash layer on the raw feature, so that the run's network is the
ordinary backbone + ``HashHead`` and encodes new images end to end:

    W' = W / sigma,   b' = b - W' mu      =>   tanh(W' f + b') = tanh(W z + b).

SREM erases image regions, so it has no place here: of the loss terms only ESRL trains on
features (its positives are other features of the anchor's class).

The cache (``features.npz`` in the run folder) carries a fingerprint of the data (image paths,
sizes, modification times and the Dataset's transform; or the bytes of a tensor) and of the
backbone (a digest of its weights); when either changes, the features are computed again. A
cache is also checked against what it must hold (one feature of the backbone's width per image,
the split's labels); a cache that is damaged, truncated or does not fit is computed again with
a warning, never trained on. It is written with ``files.atomic_write``.
"""
from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.loader import encode_loader, image_files
from ..errors import BadOption
from ..files import atomic_write, path_bytes
from ..models.heads import HashHead, HashingModel
from ..retrieval.codes import binarize
from .asymmetric import train_asymmetric

FEATURES_FILE = "features.npz"
FEATURE_BATCH = 128  # images per forward pass of the backbone


# ---------------------------------------------------------------- fingerprints
def backbone_digest(backbone) -> str:
    """sha256 of the backbone's class and weights (every tensor of its state dict)."""
    h = hashlib.sha256(type(backbone).__name__.encode())
    for name, t in backbone.state_dict().items():
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def data_digest(data) -> str | None:
    """sha256 of a split's images: a tensor's bytes, or a Dataset's file list (path, size,
    modification time) and transform; None for a Dataset that keeps no file list."""
    h = hashlib.sha256()
    if isinstance(data, torch.Tensor):
        h.update(f"{data.dtype}:{tuple(data.shape)};".encode())
        h.update(data.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()
    files = image_files(data)
    if files is None:
        return None
    base = data
    while isinstance(base, torch.utils.data.Subset):
        base = base.dataset
    h.update(repr(getattr(base, "transform", None)).encode())
    for path in files:
        stat = os.stat(path)
        h.update(path_bytes(path) + f"\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())  # names in any encoding
    return h.hexdigest()


def fingerprint(backbone, splits: dict) -> str | None:
    """One string for the backbone and every split's data (None when a split has no fingerprint)."""
    parts = [f"backbone={backbone_digest(backbone)}"]
    for name in sorted(splits):
        digest = data_digest(splits[name][0])
        if digest is None:
            return None
        parts.append(f"{name}={digest}")
    return ";".join(parts)


# ---------------------------------------------------------------- features
def split_batches(data, batch_size, workers, device):
    """The images of a split's data (a tensor or a Dataset) batch by batch, in order."""
    if isinstance(data, torch.Tensor):
        for s in range(0, len(data), batch_size):
            yield data[s:s + batch_size]
    else:
        for x, _ in encode_loader(data, batch_size, workers, device):
            yield x


@torch.no_grad()
def extract_features(backbone, splits: dict, device="cpu", batch_size: int = FEATURE_BATCH, workers: int | None = None,
                     progress: bool = True) -> dict:
    """{split: (pooled features float32 (N x C), labels int64)} of every split (data, labels)."""
    device = torch.device(device)
    was_training = backbone.training
    backbone.eval().to(device)
    cuda = device.type == "cuda"
    out = {}
    with tqdm(total=sum(len(d) for d, _ in splits.values()), desc="backbone features", unit="img",
              disable=not progress) as bar:
        for name, (data, labels) in splits.items():
            feats = []
            for x in split_batches(data, batch_size, workers, device):
                x = x.to(device, non_blocking=True)
                if x.ndim == 4:  # faster on CPUs too (about 1.5x for efficientnet-lite0)
                    x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                    feats.append(backbone(x)[1].float().cpu())
                bar.update(len(x))
            out[name] = (torch.cat(feats), torch.as_tensor(np.asarray(labels), dtype=torch.int64))
    backbone.train(was_training)
    return out


def _read_cache(cache: Path, key: str, splits, width: int, warn: bool = True) -> dict | None:
    """The cached features when ``cache`` holds those of these splits (fingerprint, one feature of
    ``width`` per image, the same labels), else None; a damaged cache is named in a warning."""
    if not cache.is_file():
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            if str(z["fingerprint"]) != key:
                return None  # other data or weights: computed again, as designed
            out = {s: (torch.from_numpy(z[f"{s}.features"]), torch.from_numpy(z[f"{s}.labels"])) for s in splits}
        for s, (f, y) in out.items():
            labels = np.asarray(splits[s][1])
            if f.ndim != 2 or f.shape != (len(labels), width) or not np.array_equal(y.numpy(), labels):
                raise ValueError(f"the {s} features are {tuple(f.shape)}, the split needs ({len(labels)}, {width})")
        return out
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as err:  # truncated, damaged, from another version: computed again
        if warn:
            warnings.warn(f"the feature cache {cache} cannot be used ({str(err).splitlines()[0][:160] or type(err).__name__}):"
                          " computing the features again", stacklevel=3)
        return None


def _width(backbone) -> int:
    return int(getattr(backbone, "out_channels"))


def cache_is_current(backbone, splits: dict, cache) -> bool:
    """Whether ``cache`` holds the features of these splits under this backbone."""
    key = fingerprint(backbone, splits)
    return key is not None and _read_cache(Path(cache), key, splits, _width(backbone), warn=False) is not None


def cached_features(backbone, splits: dict, cache=None, device="cpu", workers: int | None = None,
                    progress: bool = True) -> dict:
    """The features of ``extract_features``, read from ``cache`` (an .npz file) when its
    fingerprint matches the backbone and the data, else computed and written there atomically."""
    key = fingerprint(backbone, splits) if cache is not None else None
    cache = Path(cache) if cache is not None else None
    if key is not None and (stored := _read_cache(cache, key, splits, _width(backbone))) is not None:
        return stored
    feats = extract_features(backbone, splits, device, workers=workers, progress=progress)
    if key is not None:
        arrays = {f"{s}.{k}": v.numpy() for s, (f, y) in feats.items() for k, v in (("features", f), ("labels", y))}
        buf = io.BytesIO()
        np.savez(buf, fingerprint=np.array(key), **arrays)
        atomic_write(cache, buf.getbuffer())
    return feats


# ---------------------------------------------------------------- the hash layer
def fold(head: HashHead, mu: torch.Tensor, sigma: torch.Tensor) -> HashHead:
    """The hash layer on raw features equal to ``head`` on standardised ones (W' = W / sigma,
    b' = b - W' mu)."""
    out = HashHead(head.fc.in_features, head.bits)
    with torch.no_grad():
        w = head.fc.weight.detach().cpu() / sigma
        out.fc.weight.copy_(w)
        out.fc.bias.copy_(head.fc.bias.detach().cpu() - w @ mu)
    return out


def train_head(features: dict, cfg, checkpoint_dir=None, device="cpu", progress: bool = True):
    """The asymmetric loop on cached features {"train": (f, y), "val": (f, y) optional}:
    returns (hash layer on raw features, V, history)."""
    if "srem" in cfg.terms:
        raise BadOption("frozen-backbone mode trains the hash layer on pooled features, and SREM erases image regions: "
                        "train a system without SREM (adsh, adsh+esrl)")
    f_db, y_db = features["train"]
    mu, sigma = f_db.mean(0), f_db.std(0).clamp_min(1e-6)
    device = torch.device(device)
    torch.manual_seed(cfg.seed)
    head = HashHead(f_db.shape[1], sum(cfg.segments)).to(device)
    val = None
    if "val" in features:
        val = (((features["val"][0] - mu) / sigma).to(device), features["val"][1])
    V, hist = train_asymmetric(head, ((f_db - mu) / sigma).to(device), y_db.to(device), cfg,
                               checkpoint_dir=checkpoint_dir, val=val, progress=progress)
    return fold(head, mu, sigma), V, hist


def train_frozen(backbone, splits: dict, cfg, run_dir=None, device="cpu", workers: int | None = None,
                 progress: bool = True):
    """Frozen-backbone asymmetric training. ``splits``: {"train": (data, labels), "val": ...,
    "test": ...} as ``data.course_splits`` gives them. Features are cached in
    ``run_dir/features.npz`` and the loop checkpoints to ``run_dir/checkpoints`` (resumable).

    Returns (model = backbone + trained hash layer, V, history, features)."""
    if "srem" in cfg.terms:  # before the slow part
        train_head({}, cfg)
    run_dir = Path(run_dir) if run_dir is not None else None
    feats = cached_features(backbone, splits, run_dir / FEATURES_FILE if run_dir else None, device, workers, progress)
    head, V, hist = train_head(feats, cfg, run_dir / "checkpoints" if run_dir else None, device, progress)
    model = HashingModel(backbone.cpu(), head.bits)
    model.head = head
    return model.eval(), V, hist, feats


@torch.no_grad()
def encode_features(model: HashingModel, features: torch.Tensor) -> np.ndarray:
    """Binary codes (+-1 int8) of pooled features through the model's hash layer."""
    head = model.head.cpu().eval()
    return binarize(torch.cat([head(f) for f in features.float().split(4096)]).numpy())


__all__ = ["FEATURES_FILE", "FEATURE_BATCH", "backbone_digest", "cache_is_current", "cached_features",
           "data_digest", "encode_features", "extract_features", "fingerprint", "fold", "split_batches", "train_frozen",
           "train_head"]
