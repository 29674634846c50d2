"""Asymmetric training (ADSH, and FCAENet on top of it): the network learns the query codes,
the database codes V are learned directly by the discrete solver.

Each *iteration* of the training loop (``loop.py``) runs four named steps over one ``AsymmetricState``:

1. ``sample``       draw m database points Omega (and r, the similar/dissimilar ratio of the sample);
2. ``train_epoch``  fix V, train the network on the sample (``epochs`` times) with the ADSH loss
                    (plus, for FCAENet, the erased views of SREM and the ESRL loss);
3. ``v_step``       fix the network, update V bit by bit (``solver.update_database_codes``);
4. ``select``       rank the validation queries against V and keep the best iteration (``loop.Best``);

and the loop checkpoints after every epoch: ``train_asymmetric`` resumes from the last checkpoint
in ``checkpoint_dir``, and an interrupted run ends in the same state as an uninterrupted one.
Optimizer, learning-rate schedule and augmentation come from the ``TrainConfig`` (``config.py``).
At test time the database codes are V (asymmetric) and the queries are encoded by the network.

Data: ``images`` is a tensor (SynthBirds, or cached backbone features in frozen mode), cached maps
of frozen stages with their flips (``stage_maps.MapViews``), or an image Dataset; each epoch's
batches (rows of the sample, their ESRL positives) come from its batch source
(``data.loader.batch_source``: sliced and augmented in the main process, or decoded and augmented by
``TrainLoader``'s workers from a plan drawn by the run's generator).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..attention.erasing import make_eraser, split_masks
from ..data import stack
from ..data.loader import batch_source
from ..errors import BadOption
from ..models.encode import encode
from ..retrieval.codes import binarize
from ..retrieval.metrics import check_labels, segment_maps
from .config import OPTIMIZERS, TERMS, AsymmetricConfig, TrainConfig
from .initial_codes import initial_codes
from .loop import Best, Run, Steps, autocast, check_segments, fit, improves, optimizer_step, restore_best, resume
from .losses import adsh_loss, esrl, soft_similarity
from .positives import DatasetPositives, batch_positives
from .schedules import lr_at, set_lr
from .solver import similarity_ratio, update_database_codes


@dataclass
class AsymmetricHistory:
    loss: list = field(default_factory=list)  # mean loss per epoch
    val_map: list = field(default_factory=list)  # per iteration, validation queries vs V (mean over segments)
    lr: list = field(default_factory=list)  # learning rate of each iteration (schedules.py)
    best_iteration: int = -1


@dataclass
class AsymmetricState:
    """What the asymmetric steps evolve besides the network, optimizer and generator (``loop.Run``)."""
    V: torch.Tensor  # n x bits database codes, +-1 floats
    sample: torch.Tensor | None = None  # the m sampled database rows of this iteration
    U: torch.Tensor | None = None  # m x bits relaxed codes of the sample, filled batch by batch
    r: torch.Tensor | None = None  # similar / dissimilar pairs of the sample (soft similarity)


def _split(u, segments):
    return u.split(list(segments), 1)


def make_optimizer(model, cfg: TrainConfig, params=None):
    """``cfg.optimizer`` over ``params`` (parameter groups; default all of ``model``'s parameters)."""
    params = model.parameters() if params is None else params
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)  # of OPTIMIZERS, checked by the config


def batch_loss(model, x, y, pos, state: AsymmetricState, cfg, erase, labels, g, x_pos=None):
    """ADSH loss per code segment, plus the erased view (SREM) and ESRL where ``cfg.terms`` say;
    ``x_pos``: the ESRL positives drawn from the dataset (None: from the batch)."""
    S = soft_similarity(y, labels, cfg.similarity, r=state.r)  # r of the whole sample, not the batch
    masks = None
    if getattr(erase, "needs_masks", False):  # part masks carried as channels, for the erasing only
        x, masks = split_masks(x)
        x_pos = None if x_pos is None else split_masks(x_pos)[0]
    u = model(x, y) if getattr(model, "takes_labels", False) else model(x)
    state.U[pos] = u.detach().float()
    rows = state.sample[pos]
    views = [u]
    if "srem" in cfg.terms:
        views.append(model(erase(model, x, masks)[0]))
    loss = 0.0
    for view in views:
        for part, Vk in zip(_split(view, cfg.segments), _split(state.V, cfg.segments)):
            loss = loss + adsh_loss(part, Vk, S, Vk[rows], cfg.gamma) / len(cfg.segments)
    if "esrl" in cfg.terms:
        u_pos = model(x_pos if x_pos is not None else x[batch_positives(y, g).to(x.device)])
        u_erased = views[1] if len(views) > 1 else u
        loss = loss + cfg.esrl_weight * esrl(u, u_pos, u_erased, cfg.alpha, cfg.beta)
    return loss + getattr(model, "aux_loss", 0.0)


# ---------------------------------------------------------------- the steps
def sample(state: AsymmetricState, labels, cfg, g) -> None:
    """Step 1: Omega, m database rows drawn without replacement; U reset; r of the sample."""
    n, m = len(labels), min(cfg.samples, len(labels))
    state.sample = torch.randperm(n, generator=g)[:m].to(labels.device)
    state.U = torch.zeros(m, state.V.shape[1], device=labels.device)
    state.r = similarity_ratio(labels[state.sample], labels, int(labels.max()) + 1).float()


def train_epoch(model, opt, images, labels, state: AsymmetricState, cfg, erase, g, positives=None, dist=None) -> float:
    """Step 2: one pass over the sample in shuffled mini-batches; returns the mean loss.
    ``images``: the run's batch source (``data.loader.batch_source``) or what it is made from;
    ``positives``: a ``DatasetPositives`` when ESRL draws its positives from the whole training set;
    ``dist``: this process's place in data-parallel training (``training/distributed.py``: its shard
    of each batch, U gathered)."""
    device = labels.device
    amp = cfg.amp and device.type == "cuda"
    model.train()
    total, batches, m = 0.0, 0, len(state.sample)
    order = torch.randperm(m, generator=g).to(device)
    draw = None
    if "esrl" in cfg.terms and cfg.positives == "dataset":
        draw = positives or DatasetPositives(labels)
    positions = [order[s:s + cfg.batch_size] for s in range(0, max(1, m - cfg.batch_size + 1), cfg.batch_size)]
    plan = batch_source(images, device, cfg.max_shift, cfg.workers).batches([state.sample[p].cpu() for p in positions], g, draw)
    source, mine = ((pos, x, x_pos) for pos, (_, x, x_pos) in zip(positions, plan)), []
    if dist is not None:
        source = dist.shard_batches(source)
    for pos, x, x_pos in source:
        idx = state.sample[pos]
        x, x_pos = x.to(device, non_blocking=True), None if x_pos is None else x_pos.to(device, non_blocking=True)
        if amp and x.ndim == 4:
            x = x.to(memory_format=torch.channels_last)
            x_pos = None if x_pos is None else x_pos.to(memory_format=torch.channels_last)
        with autocast(amp):
            loss = batch_loss(model, x, labels[idx], pos, state, cfg, erase, labels, g, x_pos=x_pos)
        if dist is not None:  # the step on the whole batch (training/distributed.py)
            loss = loss * dist.loss_scale(len(pos), min(cfg.batch_size, m))
            mine.append(pos)
        total, batches = total + optimizer_step(opt, loss), batches + 1
    if dist is not None:
        return dist.finish_epoch(state, mine, total / max(batches, 1), g)
    return total / max(batches, 1)


def v_step(state: AsymmetricState, labels, cfg) -> None:
    """Step 3: V, one code segment at a time, from the sample's U (FCAENet Eq. 16-17)."""
    parts = [update_database_codes(Vk, Uk, state.sample, labels, cfg.gamma, cfg.similarity)
             for Vk, Uk in zip(_split(state.V, cfg.segments), _split(state.U, cfg.segments))]
    state.V = torch.cat(parts, 1)


def select(model, run: Run, state: AsymmetricState, val, labels, cfg, iteration: int) -> None:
    """Step 4: model selection on the validation queries: keep the weights and V of the best iteration."""
    score = float(sum(evaluate_asymmetric(model, val[0], val[1], state.V, labels, cfg.segments)) / len(cfg.segments))
    run.history.val_map.append(score)
    if improves(run.best, score):
        run.history.best_iteration = iteration + 1
        run.best = Best.of(model, iteration + 1, score, state.V)


class AsymmetricSteps(Steps):
    """The four steps in the loop: ``begin`` sets the iteration's rate and samples, ``epoch`` trains,
    ``end`` runs the V-step and the selection; ``plateau``: ``patience`` iterations without a better one."""

    def __init__(self, model, net, source, labels, cfg, state: AsymmetricState, erase, g, positives, val, dist):
        self.model, self.net, self.source, self.labels, self.cfg, self.state = model, net, source, labels, cfg, state
        self.erase, self.g, self.positives, self.val, self.dist = erase, g, positives, val, dist
        self.iterations, self.epochs, self.main = cfg.iterations, cfg.epochs, dist is None or dist.is_main

    def begin(self, run, iteration, first_epoch):
        set_lr(run.opt, lr_at(self.cfg.schedule, self.cfg.lr, iteration, self.cfg.milestones))
        if first_epoch == 0:
            run.history.lr.append(run.opt.param_groups[0]["lr"])
        if first_epoch == 0 or self.state.sample is None:
            sample(self.state, self.labels, self.cfg, self.g)

    def epoch(self, run, iteration, epoch):
        return train_epoch(self.net, run.opt, self.source, self.labels, self.state, self.cfg, self.erase, self.g,
                           self.positives, self.dist)

    def end(self, run, iteration):  # fix the network, learn V
        if self.main:
            v_step(self.state, self.labels, self.cfg)
        if self.dist is not None:
            self.state.V = self.dist.broadcast_codes(self.state.V)
        if self.val is not None and self.main:
            select(self.model, run, self.state, self.val, self.labels, self.cfg, iteration)

    def plateau(self, run):  # no better iteration for `patience` iterations
        best = run.history.best_iteration
        return bool(self.cfg.patience and self.dist is None and best > 0 and run.iteration - best >= self.cfg.patience)

    def entries(self):
        return {k: getattr(self.state, k) for k in ("V", "U", "sample", "r")}


def train_asymmetric(model, images, labels, cfg: TrainConfig, checkpoint_dir=None, val=None, progress: bool = True,
                     dist=None, *, callbacks=()):
    """Train ``model`` asymmetrically on the database (images, labels); returns (V, history).

    ``val = (images, labels)``: validation queries ranked against V after every iteration; the
    weights and V of the best iteration are restored at the end (never the query split).
    ``callbacks``: ``loop`` callbacks after every epoch (``loop.StopAfter`` interrupts the run: it
    returns the V and history of that moment, and the next call resumes from the checkpoint).
    ``dist``: a ``training.distributed.Distributed`` (torchrun): DDP on every process, the V-step,
    validation and checkpoints on rank 0, and every process ends with rank 0's weights and V.
    """
    check_segments(cfg.segments, model)
    device = next(model.parameters()).device
    labels = torch.as_tensor(check_labels(labels, "labels")).long().to(device)  # (n, 1) read as class ids
    if labels.ndim != 1 or len(labels) == 0:
        raise BadOption(f"labels must be the class ids (n,) of at least one image, got shape {tuple(labels.shape)}")
    g = torch.Generator().manual_seed(cfg.seed)
    state = AsymmetricState(V=initial_codes(model, images, labels, cfg, g))
    run = Run(model, make_optimizer(model, cfg), g, AsymmetricHistory())
    size = stack(images, [0]).shape[-1]
    erase = make_eraser(cfg.erasing, size, cfg.srem_regions)
    source = batch_source(images, device, cfg.max_shift, cfg.workers, "plan", size)  # one for the run: its workers persist
    positives = DatasetPositives(labels) if "esrl" in cfg.terms and cfg.positives == "dataset" else None
    path = Path(checkpoint_dir) / "asymmetric.pt" if checkpoint_dir else None
    if (saved := resume(path, run, dist)) is not None:
        state = AsymmetricState(**{k: saved[k].to(device) for k in ("V", "U", "sample", "r")})
    if cfg.amp and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile()  # in place: the state dict keeps its keys
    net = model if dist is None else dist.wrap(model)
    steps = AsymmetricSteps(model, net, source, labels, cfg, state, erase, g, positives, val, dist)
    desc = "+".join(("adsh", *cfg.terms)) + " iterations"
    if not fit(steps, run, path, callbacks, progress and steps.main, desc, steps.main):
        return steps.state.V, run.history
    if run.best is not None:
        restore_best(run)
        steps.state.V = run.best.codes.to(device)
    if dist is not None:
        dist.broadcast_model(model)
        steps.state.V = dist.broadcast_codes(steps.state.V)
    return steps.state.V, run.history


def evaluate_asymmetric(model, query_images, query_labels, V, db_labels, segments, ties="expected") -> list:
    """Tie-aware mAP of every code segment: network codes of the queries against V."""
    codes, db = encode(model, query_images), binarize(V)
    ql = query_labels.cpu() if hasattr(query_labels, "cpu") else query_labels
    dl = db_labels.cpu() if hasattr(db_labels, "cpu") else db_labels
    return segment_maps(codes, db, ql, dl, segments, ties)


__all__ = ["AsymmetricConfig", "AsymmetricHistory", "AsymmetricState", "AsymmetricSteps", "OPTIMIZERS", "TERMS",
           "TrainConfig", "batch_loss", "evaluate_asymmetric", "make_optimizer", "sample", "select", "train_asymmetric",
           "train_epoch", "v_step"]
