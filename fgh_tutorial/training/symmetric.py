"""The training loop of systems whose database codes are the network's own codes (DNNH,
GAN-regularised maximum-entropy hashing, order-aware triplets): one loop, a loss per system.

It runs under the same budget as the asymmetric loop (``AsymmetricConfig``): ``iterations`` times,
draw ``samples`` database images, train ``epochs`` passes over them in mini-batches, then rank the
validation images against each other (each one a query, all of them, itself included, the database:
a score that needs no pass over the whole database) and keep the best iteration (the query split is
never looked at); the database is encoded once, by the kept network. So a system trained here sees
exactly as many images as one trained asymmetrically with the same config. Optimizer, learning-rate schedule and augmentation come
from the config too (the backbone at a tenth of the rate, ``make_optimizer``). The iterations,
epochs, checkpoints, resuming and the kept best iteration are those of the training loop
(``loop.py``); the steps here: ``begin`` (rate, sample), ``epoch`` (the mini-batches, read in the main
process through ``data.loader.InMemory``) and ``end`` (the selection).

    database codes  B_db = sign(f(X_db))    (the network's binary codes of the database images,
                                             not codes learned by a solver as in ADSH)

A system plugs in ``batch_loss(model, x, y, g) -> loss`` and, optionally, ``batches(sample, labels,
cfg, g)`` (e.g. class-balanced batches for triplets).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..data.loader import batch_source
from ..errors import BadOption
from ..models.encode import encode
from ..retrieval.metrics import segment_maps
from .asymmetric import AsymmetricHistory
from .asymmetric import make_optimizer as make_asymmetric_optimizer
from .config import TrainConfig
from .loop import Best, Run, Steps, autocast, check_segments, fit, improves, optimizer_step, restore_best, resume
from .schedules import lr_at, set_lr

BACKBONE_LR_SCALE = 0.1  # the trained backbone learns at a tenth of the rate of the new layers


def random_batches(sample: torch.Tensor, labels: torch.Tensor, cfg: TrainConfig, g: torch.Generator):
    """The sample in shuffled mini-batches of ``cfg.batch_size`` (the last partial one dropped,
    batch norm needs more than one image)."""
    order = sample[torch.randperm(len(sample), generator=g)]
    return [order[s:s + cfg.batch_size] for s in range(0, max(1, len(order) - cfg.batch_size + 1), cfg.batch_size)]


def make_optimizer(model, cfg: TrainConfig):
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


class SymmetricSteps(Steps):
    """``begin``: the iteration's rate and sample; ``epoch``: ``batch_loss`` over its batches;
    ``end``: the selection on the validation images."""

    def __init__(self, model, images, labels, cfg, batch_loss, batches, val):
        self.model, self.labels, self.cfg, self.batch_loss, self.batches, self.val = model, labels, cfg, batch_loss, batches, val
        self.device = next(model.parameters()).device
        self.source = batch_source(images, self.device, cfg.max_shift, decode="main")
        self.iterations, self.epochs, self.sample = cfg.iterations, cfg.epochs, None

    def begin(self, run, iteration, first_epoch):
        set_lr(run.opt, lr_at(self.cfg.schedule, self.cfg.lr, iteration, self.cfg.milestones))
        if first_epoch == 0 or self.sample is None:
            self.sample = torch.randperm(len(self.labels), generator=run.g)[:min(self.cfg.samples, len(self.labels))]

    def epoch(self, run, iteration, epoch):
        model, amp = self.model, self.cfg.amp and self.device.type == "cuda"
        model.train()
        total, n = 0.0, 0
        for idx, x, _ in self.source.batches(self.batches(self.sample, self.labels, self.cfg, run.g), run.g):
            y = self.labels[idx].to(self.device)
            with autocast(amp):
                loss = self.batch_loss(model, x, y, run.g) + getattr(model, "aux_loss", 0.0)
            total, n = total + optimizer_step(run.opt, loss), n + 1
        return total / max(n, 1)

    def end(self, run, iteration):
        """With ``val``, keep this iteration's weights if its validation score is the best so far;
        without, keep the last iteration's."""
        score = None
        if self.val is not None:
            codes = encode(self.model, self.val[0])  # the validation images ranked against each other
            score = float(sum(segment_maps(codes, codes, self.val[1], self.val[1], self.cfg.segments)) / len(self.cfg.segments))
            run.history.val_map.append(score)
        if improves(run.best, score):
            run.history.best_iteration = iteration + 1
            run.best = Best.of(self.model, iteration + 1, score)

    def entries(self):
        return {"sample": self.sample}


def train_symmetric(model, images, labels, cfg: TrainConfig, batch_loss, *, batches=random_batches,
                    name: str = "symmetric", checkpoint_dir=None, val=None, progress: bool = True, dist=None, callbacks=()):
    """Train ``model`` with ``batch_loss`` on the database (images, labels) under the budget of
    ``cfg``; returns (database codes as a +-1 float tensor, ``AsymmetricHistory``).

    ``batch_loss(model, x, y, g)``: the loss of one augmented batch (``g`` seeds any sampling).
    ``val = (images, labels)``: model selection on the validation images after every iteration
    (the best iteration's weights are kept, then the database is encoded). Without ``val`` the last iteration's
    are returned. ``callbacks``: ``loop`` callbacks after every epoch; a run a callback stops
    returns (None, history) and the next call resumes from the checkpoint."""
    if dist is not None:
        raise BadOption(f"the {name} trainer runs in one process; distributed training is for asymmetric systems")
    check_segments(cfg.segments, model)
    if cfg.iterations < 1 or cfg.epochs < 1 or cfg.samples < 1:
        raise BadOption("iterations, epochs and samples must be positive, "
                         f"got {cfg.iterations}, {cfg.epochs}, {cfg.samples}")
    device = next(model.parameters()).device
    labels = torch.as_tensor(labels)
    run = Run(model, make_optimizer(model, cfg), torch.Generator().manual_seed(cfg.seed), AsymmetricHistory())
    steps = SymmetricSteps(model, images, labels, cfg, batch_loss, batches, val)
    path = Path(checkpoint_dir) / f"{name}.pt" if checkpoint_dir else None
    if (saved := resume(path, run)) is not None:
        steps.sample = saved["sample"]
    if not fit(steps, run, path, callbacks, progress, f"{name} iterations"):
        return None, run.history
    restore_best(run)
    return torch.as_tensor(encode(model, images), dtype=torch.float32, device=device), run.history
