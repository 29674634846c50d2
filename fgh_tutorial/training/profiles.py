"""One switch decides the scale of every notebook: ``cpu`` (the default, a 2-core laptop or
CI: 64 px SynthBirds, a small backbone trained from scratch) or ``gpu`` (448 px CUB-200-2011
with an ImageNet ResNet-50, the papers' schedule).

Choose it with the ``FGH_PROFILE`` environment variable or a notebook's ``parameters`` cell.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import numpy as np

from ..errors import BadOption


@dataclass(frozen=True)
class Profile:
    name: str
    dataset: str  # "synthetic" or a real dataset name
    image_size: int
    backbone: str
    pretrained: bool
    per_class: int  # SynthBirds images per class in the database (train) split
    per_class_query: int  # ... in the query (test) split
    per_class_val: int  # ... in the validation split
    epochs: int
    batch_size: int
    lr: float
    seed: int = 0
    threads: int | None = None  # CPU threads; fixed in the cpu profile so results repeat exactly
    device: str = "cpu"
    data_root: str | None = None  # a real dataset's folder ($FGH_DATA)
    val_fraction: float = 0.1  # real datasets: share of the train split held out for model selection


PROFILES = {
    "cpu": Profile("cpu", "synthetic", 64, "minires", False, per_class=60, per_class_query=10,
                   per_class_val=5, epochs=14, batch_size=64, lr=3e-3, threads=2),
    "gpu": Profile("gpu", "cub", 448, "resnet50", True, per_class=200, per_class_query=50,
                   per_class_val=20, epochs=60, batch_size=64, lr=1e-3, device="cuda"),
}


def get_profile(name: str | None = None, **overrides) -> Profile:
    """The profile ``name`` (default: ``$FGH_PROFILE`` or ``"cpu"``), with fields overridden."""
    name = name or os.environ.get("FGH_PROFILE", "cpu")
    if name not in PROFILES:
        raise BadOption(f"unknown profile {name!r}; choose one of {sorted(PROFILES)} (FGH_PROFILE)")
    overrides.setdefault("data_root", os.environ.get("FGH_DATA"))
    return replace(PROFILES[name], **overrides)


def seed_everything(seed: int, threads: int | None = None) -> None:
    """Seed python, numpy and torch; fix the CPU thread count when given."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
