"""The course model on disk: trained once per profile and code length (deterministically under
the profile's seed), then loaded, so later notebooks start from notebook 01's model.
Checkpoints hold tensors only and are read with ``weights_only=True``.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..files import cache_dir
from ..models.backbones import build_backbone
from ..models.heads import HashingModel
from .central import History, train_hashing
from .checkpoints import load_checkpoint, save_checkpoint
from .profiles import Profile, seed_everything


def _config(profile: Profile, bits: int, variant: str = "default") -> dict:
    config = {"profile": asdict(profile), "bits": bits, "loss": "central_similarity", "version": 2}
    return config if variant == "default" else {**config, "data": variant}


def checkpoint_path(profile: Profile, bits: int, variant: str = "default") -> Path:
    """The checkpoint of ``profile`` at ``bits``; ``variant`` names the data it was trained on when
    that is not the profile's own (a SynthBirds variant: each variant has its own course model)."""
    key = hashlib.sha1(json.dumps(_config(profile, bits, variant), sort_keys=True).encode()).hexdigest()[:10]
    name = profile.name if variant == "default" else f"{profile.name}-{variant}"
    return cache_dir() / f"{name}-{profile.backbone}-{bits}bit-{key}.pt"


def build_model(profile: Profile, bits: int) -> HashingModel:
    return HashingModel(build_backbone(profile.backbone, pretrained=profile.pretrained), bits)


def load_or_train(profile: Profile, bits: int, splits: dict, progress: bool = True, retrain: bool = False,
                  variant: str = "default"):
    """The course model for ``profile`` and ``bits``: loaded from the cache when present, else
    trained (deterministically under the profile's seed) and cached. ``splits`` maps
    ``"train"`` and ``"val"`` to (images, labels) tensors of the data ``variant``. Returns (model, history)."""
    path = checkpoint_path(profile, bits, variant)
    threads = torch.get_num_threads()
    seed_everything(profile.seed, profile.threads)  # the course model is trained at the profile's thread count
    try:
        model = build_model(profile, bits).to(profile.device)
        if path.exists() and not retrain:
            state = load_checkpoint(path, map_location=profile.device)
            model.load_state_dict(state["model"])
            return model.eval(), History(**state["history"])
        hist = train_hashing(model, *splits["train"], epochs=profile.epochs, batch_size=profile.batch_size,
                             lr=profile.lr, seed=profile.seed, val=splits.get("val"), progress=progress)
        # atomic: an interrupted run never leaves a half-written checkpoint
        save_checkpoint(path, {"model": model.state_dict(), "history": asdict(hist), "config": _config(profile, bits, variant)})
        return model.eval(), hist
    finally:
        torch.set_num_threads(threads)  # and leaves the caller's thread count as it found it
