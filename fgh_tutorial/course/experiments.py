"""The course's experiments on why SREM, ESRL/FCAENet and ExchNet's exchange help or not on
SynthBirds (notebooks 03-05): each takes one setting and a seed and returns numbers.
``benchmarks/sweeps.py`` runs them over seeds with ``sweeps.run_sweep`` and writes
``assets/sweeps/<name>.json``; the notebooks plot those files and say how to rebuild them.

Every run starts from the cached course model of notebook 01 (`cpu` profile, 48 bits), so a
setting differs from its control only in what the setting names; the seed changes the order of
the batches, the augmentation, the erased regions and the samples, never the starting weights.
"""
from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch

from ..attention.cam import attention_maps
from ..attention.srem import SREM, default_region_size, srem_mask
from ..data import PART_NAMES, SynthBirds, normalize_batch, subset
from ..models.encode import encode
from ..models.exchnet import ExchNet, part_assignments, part_consistency
from ..retrieval.metrics import mean_average_precision, segment_maps
from ..systems import ABLATION, AsymmetricConfig, get_system
from ..training.cache import load_or_train
from ..training.asymmetric import evaluate_asymmetric
from ..training.central import train_hashing
from ..training.profiles import get_profile

SEEDS = (0, 1, 2, 3, 4)  # paired seeds of every notebook sweep (the yardstick: README, notebook 03)
DATA = {"default": False, "redundant": True}  # setting "data" -> SynthBirds(redundant=...)


def _split(profile, split, per_class, redundant):
    """A SynthBirds split as (images, labels, masks) tensors (drawn once, then read from the cache)."""
    images, labels, masks = SynthBirds(split, per_class, profile.image_size, profile.seed, redundant=redundant).arrays()
    return normalize_batch(images), torch.from_numpy(labels), torch.from_numpy(masks)


@lru_cache(maxsize=2)
def course_data(data: str = "default"):
    """(profile, splits {"train", "test", "val": (images, labels)}, query masks (N, 5, H, W) uint8)."""
    profile = get_profile("cpu")
    sizes = {"train": profile.per_class, "test": profile.per_class_query, "val": profile.per_class_val}
    parts = {s: _split(profile, s, n, DATA[data]) for s, n in sizes.items()}
    return profile, {s: (x, y) for s, (x, y, _) in parts.items()}, parts["test"][2].numpy()


def course_model(data: str = "default"):
    """The course model of a SynthBirds variant: notebook 01's training on that variant (cached), so
    that every run on a variant starts from a backbone trained on that variant."""
    profile, splits, _ = course_data(data)
    return load_or_train(profile, 48, splits, progress=False, variant=data)[0]


def test_map(model, data: str = "default") -> float:
    _, splits, _ = course_data(data)
    (db_x, db_y), (q_x, q_y) = splits["train"], splits["test"]
    return mean_average_precision(encode(model, q_x), encode(model, db_x), q_y, db_y)


# ---------------------------------------------------------------- SREM (notebook 03)
def srem_probe(model, data: str = "default", regions=(0, 1, 2, 3, 5, 10, 20, 50), region_size=None,
               random: bool = False) -> dict:
    """What SREM takes away, without training: for each region number, the share of each part, of the
    bird and of the background that the erased queries lose, and the mAP of the erased queries against
    the intact database codes (does the erased view still carry its class?).

    ``random=True`` adds a control: the same number of cells chosen at random instead of by attention
    (grey squares that mostly miss the bird); the result is then {"srem": ..., "random": ...}."""
    profile, splits, masks = course_data(data)
    (db_x, db_y), (q_x, q_y) = splits["train"], splits["test"]
    s = region_size or default_region_size(profile.image_size)
    maps = {"srem": attention_maps(model.eval(), q_x)}
    if random:  # SREM on a random map erases random cells
        maps["random"] = torch.rand(maps["srem"].shape, generator=torch.Generator().manual_seed(0))
    db_codes = encode(model, db_x)
    m = torch.from_numpy(masks).float()
    regions_masks = {name: m[:, k] for k, name in enumerate(PART_NAMES + ("bird",))} | {"background": 1 - m[:, 4]}
    out = {}
    for kind, att in maps.items():
        out[kind] = {}
        for n in regions:
            keep = srem_mask(att, n, s)
            row = {name: float(((1 - keep) * r).sum() / r.sum()) for name, r in regions_masks.items()}
            row["map_erased"] = mean_average_precision(encode(model, q_x * keep[:, None]), db_codes, q_y, db_y)
            out[kind][str(n)] = row
    return out if random else out["srem"]


def srem_finetune(setting: dict, seed: int) -> dict:
    """Fine-tune the course model with an erased copy of every batch (SREM with ``regions`` cells of
    5 px; 0 = the control, no erasing) on ``data``; the erased copy must hash to its class centre.
    Setting: {"data", "regions", "epochs", "lr"}; half of the database trains (as in notebook 03).
    Returns the test mAP and the erasing probe of the fine-tuned model at 10 and 50 regions."""
    profile, splits, _ = course_data(setting["data"])
    (db_x, db_y) = splits["train"]
    torch.manual_seed(seed)
    net = copy.deepcopy(course_model(setting["data"]))
    half = torch.arange(0, len(db_x), 2)
    erase = SREM(setting["regions"], default_region_size(profile.image_size)) if setting["regions"] else None
    train_hashing(net, subset(db_x, half), db_y[half], epochs=setting["epochs"], lr=setting["lr"], schedule="constant",
                  erase=erase, seed=seed, progress=False)
    probe = srem_probe(net, setting["data"], regions=(10, 50))
    return {"map": test_map(net, setting["data"]), "map_erased_10": probe["10"]["map_erased"],
            "map_erased_50": probe["50"]["map_erased"]}


# ---------------------------------------------------------------- asymmetric training (notebook 05)
def asymmetric_models(setting: dict, seed: int):
    """Train a system of the registry asymmetrically from the course backbone. Setting: {"data",
    "system", "iterations", "samples", "lengths", and optionally "positives", "srem_regions"}.
    Returns (model in eval mode, V, history): notebook 05's live run is this call for seed 0."""
    _, splits, _ = course_data(setting["data"])
    (db_x, db_y), val = splits["train"], splits["val"]
    lengths = tuple(setting["lengths"])
    extra = {k: setting[k] for k in ("positives", "srem_regions") if k in setting}
    cfg = AsymmetricConfig(segments=lengths, iterations=setting["iterations"], samples=setting["samples"], seed=seed, **extra)
    system = get_system(setting["system"])
    torch.manual_seed(seed)
    model = system.build(copy.deepcopy(course_model(setting["data"]).backbone), sum(lengths), int(db_y.max()) + 1)
    V, hist = system.train(model, db_x, db_y, cfg, val=val, progress=False)
    return model.eval(), V, hist


def asymmetric(setting: dict, seed: int) -> dict:
    """``asymmetric_models``' test mAP per code length and validation curve (one point per iteration)."""
    model, V, hist = asymmetric_models(setting, seed)
    _, splits, _ = course_data(setting["data"])
    (q_x, q_y), db_y, lengths = splits["test"], splits["train"][1], tuple(setting["lengths"])
    maps = evaluate_asymmetric(model, q_x, q_y, V, db_y, lengths)
    return {"map": {str(b): m for b, m in zip(lengths, maps)}, "val_map": hist.val_map,
            "best_iteration": hist.best_iteration, "loss": hist.loss}


# ---------------------------------------------------------------- ExchNet (notebook 04)
def part_regions(masks) -> np.ndarray:
    """Region masks (N, 6, H, W): beak, eye, wing, tail, the rest of the bird, background."""
    bird = masks[:, 4].astype(bool)
    return np.concatenate([masks[:, :4], (bird & ~masks[:, :4].any(1))[:, None], (~bird)[:, None]], 1)


def part_scores(model, images, labels, masks) -> tuple:
    """(part consistency, share of part maps per region) of an ExchNet on images with part masks."""
    import torch.nn.functional as F

    with torch.no_grad():
        m = torch.cat([model.parts(images[i:i + 256])["maps"] for i in range(0, len(images), 256)])
    m = F.interpolate(m, size=images.shape[-2:], mode="bilinear", align_corners=False).numpy()
    assigned = part_assignments(m, part_regions(masks))
    return part_consistency(assigned, np.asarray(labels)), np.bincount(assigned.ravel(), minlength=6) / assigned.size


@torch.no_grad()
def anchor_agreement(model, images, labels) -> dict:
    """How well each part feature of an ExchNet matches its class anchor, per part i:
    ``accuracy`` = share of images whose f_i is nearest to their own class's anchor a_{y,i} (chance
    1/classes), ``own`` and ``other`` = mean distance of f_i to its own anchor and to the nearest other
    class's anchor. The exchange swaps f_i for a_{y,i}: that teaches the alignment ExchNet wants only
    when the anchor resembles what the part looks like now."""
    labels = torch.as_tensor(labels)
    parts = torch.cat([model.parts(images[i:i + 256])["parts"] for i in range(0, len(images), 256)])  # N, M, D
    anchors = model.anchors.mean  # K, M, D
    d = torch.cdist(parts.transpose(0, 1), anchors.transpose(0, 1).to(parts.dtype))  # M, N, K
    own = d.gather(2, labels.view(1, -1, 1).expand(d.shape[0], -1, 1))[..., 0]
    other = d.scatter(2, labels.view(1, -1, 1).expand(d.shape[0], -1, 1), float("inf")).amin(2)
    return {"accuracy": (d.argmin(2) == labels).float().mean(1).tolist(), "own": own.mean(1).tolist(),
            "other": other.mean(1).tolist()}


def exchange_model(setting: dict, seed: int):
    """ExchNet with or without the exchange ({"exchange": bool, "epochs", "lengths", "data"}), trained
    like notebook 04 from the course backbone, in eval mode: notebook 04's live run is this call for seed 0."""
    _, splits, _ = course_data(setting["data"])
    db_x, db_y = splits["train"]
    lengths = tuple(setting["lengths"])
    torch.manual_seed(seed)
    model = ExchNet(copy.deepcopy(course_model(setting["data"]).backbone), sum(lengths), n_classes=int(db_y.max()) + 1, n_parts=4)
    model.exchanging = bool(setting["exchange"])
    train_hashing(model, db_x, db_y, epochs=setting["epochs"], lr=1e-3, seed=seed, segments=lengths, progress=False)
    return model.eval()


def exchange_run(setting: dict, seed: int) -> dict:
    """``exchange_model``'s test mAP per code length, part consistency and anchor agreement."""
    model = exchange_model(setting, seed)
    _, splits, masks = course_data(setting["data"])
    (db_x, db_y), (q_x, q_y), lengths = splits["train"], splits["test"], tuple(setting["lengths"])
    maps = segment_maps(encode(model, q_x), encode(model, db_x), q_y, db_y, lengths)
    out = {str(b): m for b, m in zip(lengths, maps)}
    consistency, spread = part_scores(model, q_x, q_y, masks)
    return {"map": out, "consistency": consistency, "regions": spread.tolist(), "anchors": anchor_agreement(model, q_x, q_y)}


# ---------------------------------------------------------------- the course's sweeps
SWEEPS = {
    "srem": (srem_finetune, [{"data": d, "regions": n, "epochs": 1, "lr": 3e-5}
                             for d in DATA for n in (0, 10, 50)]),
    "exchange": (exchange_run, [{"data": "default", "exchange": e, "epochs": 3, "lengths": [12, 24, 32, 48]}
                                for e in (False, True)]),
    "asymmetric": (asymmetric, [{"data": "default", "system": s, "iterations": 4, "samples": 1000,
                                 "lengths": [12, 24, 32, 48], "variant": "as in section 2"} for s in ABLATION]),
}

