"""The training loop of systems whose database codes are the network's own codes (DNNH,
GAN-regularised maximum-entropy hashing, order-aware triplets): one loop, a loss per system.

It runs under the same budget as the asymmetric loop (``AsymmetricConfig``): ``iterations`` times,
draw ``samples`` database images, train ``epochs`` passes over them in mini-batches, then rank the
validation images against each other (each one a query, all of them, itself included, the database:
a score that needs no pass over the whole database) and keep the best iteration (the query split is
never looked at); the database is encoded once, by the kept network. So a system trained here sees
exactly as many images as one trained asymmetrically with the same config. Optimizer, learning-rate schedule and augmentation come
from the config too (the backbone at a tenth of the rate, ``make_optimizer``); a checkpoint is
written after every epoch and an interrupted run resumes.

    database codes  B_db = sign(f(X_db))    (the network's binary codes of the database images,
                                             not codes learned by a solver as in ADSH)

A system plugs in ``batch_loss(model, x, y, g) -> loss`` and, optionally, ``batches(sample, labels,
cfg, g)`` (e.g. class-balanced batches for triplets).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import BadOption
from ..data import stack
from ..data.transforms import augment
from ..models.encode import encode
from ..retrieval.metrics import segment_maps
from .asymmetric import AsymmetricConfig, AsymmetricHistory
from .asymmetric import make_optimizer as make_asymmetric_optimizer
from .checkpoints import load_checkpoint, save_checkpoint
from .schedules import lr_at, set_lr

BACKBONE_LR_SCALE = 0.1  # the trained backbone learns at a tenth of the rate of the new layers


def random_batches(sample: torch.Tensor, labels: torch.Tensor, cfg: AsymmetricConfig, g: torch.Generator):
    """The sample in shuffled mini-batches of ``cfg.batch_size`` (the last partial one dropped,
    batch norm needs more than one image)."""
    order = sample[torch.randperm(len(sample), generator=g)]
    return [order[s:s + cfg.batch_size] for s in range(0, max(1, len(order) - cfg.batch_size + 1), cfg.batch_size)]


def make_optimizer(model, cfg: AsymmetricConfig):
    """``cfg.optimizer`` over two parameter groups: the parameters of ``model.backbone`` (if any) at
    ``BACKBONE_LR_SCALE`` times the rate of the others (the layers the system adds), the usual
    fine-tuning practice: a few hundred steps of a fresh loss must not undo the trained features."""
    backbone = getattr(model, "backbone", None)
    inner = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    groups = [{"params": [p for p in model.parameters() if id(p) in inner], "scale": BACKBONE_LR_SCALE},
              {"params": [p for p in model.parameters() if id(p) not in inner], "scale": 1.0}]
    for group in groups:
        group["lr"] = cfg.lr * group["scale"]
    return make_asymmetric_optimizer(model, cfg, [g for g in groups if g["params"]])


def train_symmetric(model, images, labels, cfg: AsymmetricConfig, batch_loss, *, batches=random_batches,
                    name: str = "symmetric", checkpoint_dir=None, val=None, stop_after_epochs: int | None = None,
                    progress: bool = True, dist=None):
    """Train ``model`` with ``batch_loss`` on the database (images, labels) under the budget of
    ``cfg``; returns (database codes as a +-1 float tensor, ``AsymmetricHistory``).

    ``batch_loss(model, x, y, g)``: the loss of one augmented batch (``g`` seeds any sampling).
    ``val = (images, labels)``: model selection on the validation images after every iteration
    (the best iteration's weights are kept, then the database is encoded). Without ``val`` the last iteration's
    are returned. ``stop_after_epochs`` interrupts the run (to test resuming)."""
    if dist is not None:
        raise BadOption(f"the {name} trainer runs in one process; distributed training is for asymmetric systems")
    if sum(cfg.segments) != model.bits:
        raise BadOption(f"segments {cfg.segments} must add up to the model's {model.bits} bits")
    if cfg.iterations < 1 or cfg.epochs < 1 or cfg.samples < 1:
        raise BadOption("iterations, epochs and samples must be positive, "
                         f"got {cfg.iterations}, {cfg.epochs}, {cfg.samples}")
    device = next(model.parameters()).device
    labels = torch.as_tensor(labels)
    g = torch.Generator().manual_seed(cfg.seed)
    opt = make_optimizer(model, cfg)
    amp = cfg.amp and device.type == "cuda"
    hist, best, start, sample = AsymmetricHistory(), None, (0, 0), None
    path = Path(checkpoint_dir) / f"{name}.pt" if checkpoint_dir else None
    if path is not None and path.exists():
        saved = load_checkpoint(path)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        g.set_state(saved["generator"])
        hist, best, start, sample = AsymmetricHistory(**saved["history"]), saved["best"], saved["next"], saved["sample"]
    done = 0
    for it in tqdm(range(start[0], cfg.iterations), desc=f"{name} iterations", disable=not progress):
        set_lr(opt, lr_at(cfg.schedule, cfg.lr, it, cfg.milestones))
        first = start[1] if it == start[0] else 0
        if first == 0 or sample is None:
            sample = torch.randperm(len(labels), generator=g)[:min(cfg.samples, len(labels))]
        for epoch in range(first, cfg.epochs):
            model.train()
            total, n = 0.0, 0
            for idx in batches(sample, labels, cfg, g):
                x = augment(stack(images, idx), g, cfg.max_shift).to(device, non_blocking=True)
                y = labels[idx].to(device)
                with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
                    loss = batch_loss(model, x, y, g) + getattr(model, "aux_loss", 0.0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, n = total + loss.item(), n + 1
            hist.loss.append(total / max(n, 1))
            if epoch == cfg.epochs - 1:
                best = _select(model, val, cfg, hist, it, best)
            nxt = (it + 1, 0) if epoch == cfg.epochs - 1 else (it, epoch + 1)
            if path is not None:
                save_checkpoint(path, {"model": model.state_dict(), "opt": opt.state_dict(), "generator": g.get_state(),
                                       "history": asdict(hist), "best": best, "next": nxt, "sample": sample})
            done += 1
            if stop_after_epochs is not None and done >= stop_after_epochs:
                return None, hist
    model.load_state_dict(best["model"])
    return torch.as_tensor(encode(model, images), dtype=torch.float32, device=device), hist


def _select(model, val, cfg, hist, it, best) -> dict:
    """With ``val``, keep this iteration's weights if its validation score is the best so far;
    without, keep the last iteration's."""
    score = None
    if val is not None:
        codes = encode(model, val[0])  # the validation images ranked against each other
        score = float(sum(segment_maps(codes, codes, val[1], val[1], cfg.segments)) / len(cfg.segments))
        hist.val_map.append(score)
    if best is None or score is None or score > best["score"]:
        hist.best_iteration = it + 1
        return {"score": -1.0 if score is None else score,
                "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    return best
