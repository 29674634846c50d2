"""A training run on disk: what ``python -m fgh_tutorial train`` writes and ``evaluate`` and
``query`` read.

    DIR/config.json       the run's settings (dataset, method, bits, profile, schedule)
    DIR/model.pt          the network's weights
    DIR/checkpoints/      per-epoch state for resuming an interrupted run
    DIR/db_codes.npy      database codes: V from the solver (asymmetric), +-1 int8
    DIR/db_labels.npy     database labels
    DIR/metrics.json      mAP (tie-aware and legacy), precision@10 of the query split
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .asymmetric import AsymmetricConfig, method_model, train_asymmetric
from .backbones import build_backbone
from .data import course_splits, default_transform
from .encode import encode
from .heads import binarize
from .metrics import mean_average_precision, precision_at_k
from .profiles import get_profile, seed_everything

RUN_METHODS = ("adsh", "fcaenet", "exchnet")


def _profile(config):
    profile = get_profile(config["profile"], dataset=config["dataset"], data_root=config.get("data"))
    return replace(profile, device=config.get("device") or profile.device)


def run_arch(config) -> str:
    """The network of a run: ``"exchnet"`` for the exchnet method, else ``"hashing"``."""
    return "exchnet" if config["method"] == "exchnet" else "hashing"


def _model(config, profile, n_classes):
    backbone = build_backbone(profile.backbone, pretrained=profile.pretrained)
    return method_model(run_arch(config), backbone, config["bits"], n_classes)


def train_run(out, dataset="synthetic", data=None, bits=48, method="adsh", profile="cpu", iterations=None,
              epochs=1, samples=2000, device=None, progress=True) -> dict:
    """Train asymmetrically and write the run folder; resumes if ``out`` holds a checkpoint."""
    if method not in RUN_METHODS:
        raise ValueError(f"method must be one of {RUN_METHODS}, got {method!r}")
    config = {"dataset": dataset, "data": str(data) if data else None, "bits": int(bits), "method": method,
              "profile": profile, "iterations": iterations, "epochs": epochs, "samples": samples, "device": device}
    prof = _profile(config)
    if device is None and prof.device == "cuda" and not torch.cuda.is_available():
        prof = replace(prof, device="cpu")
    seed_everything(prof.seed, prof.threads)
    splits = course_splits(prof, progress=progress)
    (db_x, db_y), (q_x, q_y), val = splits["train"], splits["test"], splits["val"]
    n_classes = int(max(db_y.max(), q_y.max())) + 1
    model = _model(config, prof, n_classes).to(prof.device)
    cfg = AsymmetricConfig(segments=(int(bits),), iterations=iterations or max(1, prof.epochs // 3), epochs=epochs,
                           samples=samples, method="fcaenet" if method == "fcaenet" else "adsh", seed=prof.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**config, "schedule": asdict(cfg)}, indent=1))
    V, hist = train_asymmetric(model, db_x, db_y, cfg, checkpoint_dir=out / "checkpoints", val=val, progress=progress)
    torch.save(model.state_dict(), out / "model.pt")
    np.save(out / "db_codes.npy", binarize(V.cpu().numpy()))
    np.save(out / "db_labels.npy", db_y.cpu().numpy())
    metrics = _metrics(encode(model, q_x), np.load(out / "db_codes.npy"), q_y, db_y)
    metrics["history"] = asdict(hist)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def _metrics(q_codes, db_codes, q_y, db_y) -> dict:
    return {"map": mean_average_precision(q_codes, db_codes, q_y, db_y),
            "map_legacy": mean_average_precision(q_codes, db_codes, q_y, db_y, ties="stable"),
            "precision_at_10": precision_at_k(q_codes, db_codes, q_y, db_y, 10),
            "queries": int(len(q_codes)), "database": int(len(db_codes)), "bits": int(q_codes.shape[1])}


def load_run(run):
    """(config, model in eval mode, profile) of a run folder, with clear errors."""
    run = Path(run)
    for name in ("config.json", "model.pt", "db_codes.npy", "db_labels.npy"):
        if not (run / name).exists():
            raise FileNotFoundError(f"{run / name} is missing: is {run} a finished run of 'python -m fgh_tutorial train'?")
    config = json.loads((run / "config.json").read_text())
    prof = replace(_profile(config), device="cpu")
    labels = np.load(run / "db_labels.npy")
    model = _model(config, prof, int(labels.max()) + 1)
    model.load_state_dict(torch.load(run / "model.pt", map_location="cpu", weights_only=True))
    return config, model.eval(), prof


def evaluate_run(run, encode_database: bool = False) -> dict:
    """Metrics of a run on its query split: database codes V (asymmetric), or the network's
    codes of the database images with ``encode_database``."""
    config, model, prof = load_run(run)
    splits = course_splits(prof)
    (db_x, db_y), (q_x, q_y) = splits["train"], splits["test"]
    db_codes = encode(model, db_x) if encode_database else np.load(Path(run) / "db_codes.npy")
    return {**_metrics(encode(model, q_x), db_codes, q_y, db_y), "database_codes": "network" if encode_database else "V"}


def query_run(run, images, k: int = 10) -> list:
    """Top-k database items of each image file: [(path, [(db index, label, distance), ...])]."""
    from PIL import Image

    from .index import HammingIndex

    config, model, prof = load_run(run)
    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"image(s) not found: {', '.join(missing)}")
    transform = default_transform(prof.image_size)
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in images])
    labels = np.load(Path(run) / "db_labels.npy")
    index = HammingIndex(config["bits"]).add(np.load(Path(run) / "db_codes.npy"))
    dist, ids = index.search(encode(model, x), k)
    return [(str(p), [(int(i), int(labels[i]), int(d)) for i, d in zip(row_i, row_d)])
            for p, row_i, row_d in zip(images, ids, dist)]


__all__ = ["RUN_METHODS", "evaluate_run", "load_run", "query_run", "run_arch", "train_run"]
