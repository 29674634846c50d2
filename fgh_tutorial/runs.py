"""A training run on disk: what ``python -m fgh_tutorial train`` writes and ``evaluate`` and
``query`` read.

    DIR/config.json       the run's settings (dataset, method = a system of systems.py, bits, profile, schedule)
    DIR/model.pt          the network's weights
    DIR/checkpoints/      per-epoch state for resuming an interrupted run
    DIR/db_codes.npz      database codes V from the solver, packed words (retrieval/codes.py), with the labels
    DIR/metrics.json      mAP (tie-aware and legacy), precision@10 of the query split
"""
from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .data import course_splits, default_transform
from .models.backbones import build_backbone
from .models.encode import encode
from .retrieval.codes import binarize, load_codes, pack_codes, save_codes, unpack_codes
from .retrieval.metrics import mean_average_precision, precision_at_k
from .systems import SYSTEMS, AsymmetricConfig, get_system
from .training.checkpoints import load_checkpoint, save_checkpoint
from .training.profiles import get_profile, seed_everything


def _profile(config):
    profile = get_profile(config["profile"], dataset=config["dataset"], data_root=config.get("data"))
    return replace(profile, device=config.get("device") or profile.device)


def _model(config, profile, n_classes):
    backbone = build_backbone(profile.backbone, pretrained=profile.pretrained)
    return get_system(config["method"]).build(backbone, config["bits"], n_classes)


def train_run(out, dataset="synthetic", data=None, bits=48, method="adsh", profile="cpu", iterations=None,
              epochs=1, samples=2000, device=None, progress=True) -> dict:
    """Train asymmetrically and write the run folder; resumes if ``out`` holds a checkpoint."""
    system = get_system(method)
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
    cfg = system.config(AsymmetricConfig(segments=(int(bits),), iterations=iterations or max(1, prof.epochs // 3),
                                         epochs=epochs, samples=samples, seed=prof.seed))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps({**config, "schedule": asdict(cfg)}, indent=1))
    V, hist = system.train(model, db_x, db_y, cfg, checkpoint_dir=out / "checkpoints", val=val, progress=progress)
    save_checkpoint(out / "model.pt", model.state_dict())
    db_codes = binarize(V)
    save_codes(out / "db_codes.npz", pack_codes(db_codes), int(bits), labels=db_y.cpu().numpy())
    metrics = _metrics(encode(model, q_x), db_codes, q_y, db_y)
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
    for name in ("config.json", "model.pt", "db_codes.npz"):
        if not (run / name).exists():
            raise FileNotFoundError(f"{run / name} is missing: is {run} a finished run of 'python -m fgh_tutorial train'?")
    config = json.loads((run / "config.json").read_text())
    prof = replace(_profile(config), device="cpu")
    _, labels = run_database(run)
    model = _model(config, prof, int(labels.max()) + 1)
    model.load_state_dict(load_checkpoint(run / "model.pt"))
    return config, model.eval(), prof


def run_database(run) -> tuple[np.ndarray, np.ndarray]:
    """(database codes +-1 int8, database labels) of a run folder."""
    path = Path(run) / "db_codes.npz"
    words, bits, extra = load_codes(path)
    if "labels" not in extra or len(extra["labels"]) != len(words):
        raise ValueError(f"{path} holds no database labels for its {len(words)} codes")
    return unpack_codes(words, bits), extra["labels"]


def evaluate_run(run, encode_database: bool = False) -> dict:
    """Metrics of a run on its query split: database codes V (asymmetric), or the network's
    codes of the database images with ``encode_database``."""
    config, model, prof = load_run(run)
    splits = course_splits(prof)
    (db_x, db_y), (q_x, q_y) = splits["train"], splits["test"]
    db_codes = encode(model, db_x) if encode_database else run_database(run)[0]
    return {**_metrics(encode(model, q_x), db_codes, q_y, db_y), "database_codes": "network" if encode_database else "V"}


def query_run(run, images, k: int = 10) -> list:
    """Top-k database items of each image file: [(path, [(db index, label, distance), ...])]."""
    from PIL import Image

    from .retrieval.index import HammingIndex

    config, model, prof = load_run(run)
    missing = [str(p) for p in images if not Path(p).is_file()]
    if missing:
        raise FileNotFoundError(f"image(s) not found: {', '.join(missing)}")
    transform = default_transform(prof.image_size)
    x = torch.stack([transform(Image.open(p).convert("RGB")) for p in images])
    codes, labels = run_database(run)
    index = HammingIndex(config["bits"]).add(codes)
    dist, ids = index.search(encode(model, x), k)
    return [(str(p), [(int(i), int(labels[i]), int(d)) for i, d in zip(row_i, row_d)])
            for p, row_i, row_d in zip(images, ids, dist)]


__all__ = ["SYSTEMS", "evaluate_run", "load_run", "query_run", "run_database", "train_run"]
