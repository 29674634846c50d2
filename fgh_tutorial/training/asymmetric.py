"""Asymmetric training (ADSH, and FCAENet on top of it): the network learns the query codes,
the database codes V are learned directly by the discrete solver.

Each *iteration* runs four named steps over one ``AsymmetricState``:

1. ``sample``       draw m database points Omega (and r, the similar/dissimilar ratio of the sample);
2. ``train_epoch``  fix V, train the network on the sample (``epochs`` times) with the ADSH loss
                    (plus, for FCAENet, the erased views of SREM and the ESRL loss);
3. ``v_step``       fix the network, update V bit by bit (``solver.update_database_codes``);
4. ``select``       rank the validation queries against V and keep the best iteration;

and ``save_checkpoint`` after every epoch: ``train_asymmetric`` resumes from the last checkpoint in
``checkpoint_dir``, and an interrupted run ends in the same state as an uninterrupted one.
Optimizer, learning-rate schedule and augmentation come from ``AsymmetricConfig``.
At test time the database codes are V (asymmetric) and the queries are encoded by the network.

Data: ``images`` is a tensor (SynthBirds, or cached backbone features in frozen mode), sliced in
the main process, cached maps of frozen stages with their flips (``stage_maps.MapViews``), or an
image Dataset, whose batches are decoded and augmented by the worker processes of
``data.loader.TrainLoader`` from a plan drawn by the run's generator (the same batches for any
number of workers; ``batches.py``).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..attention.erasing import ERASERS, make_eraser, split_masks
from ..errors import BadOption
from ..data import stack
from ..models.encode import encode
from ..retrieval.codes import binarize
from ..retrieval.metrics import check_labels, segment_maps
from .batches import epoch_batches, has_views, train_loader
from .checkpoints import load_checkpoint, save_checkpoint
from .initial_codes import initial_codes
from .losses import adsh_loss, esrl, soft_similarity
from .positives import POSITIVES, DatasetPositives, batch_positives
from .schedules import lr_at, set_lr
from .solver import similarity_ratio, update_database_codes

TERMS = ("srem", "esrl")  # loss terms beside ADSH's: erased views (SREM), the enhanced space relation loss
OPTIMIZERS = ("sgd", "adamw")


@dataclass
class AsymmetricConfig:
    segments: tuple = (48,)  # code lengths learned at once (one head segment and one V each)
    iterations: int = 3
    epochs: int = 1  # network epochs per iteration
    samples: int = 2000  # m, database points sampled per iteration
    gamma: float = 200.0
    lr: float = 1e-3
    batch_size: int = 64
    similarity: str = "soft"
    terms: tuple = ()  # of TERMS: () is ADSH, ("srem", "esrl") FCAENet (a system names its terms, systems.py)
    esrl_weight: float = 1.0
    alpha: float = 1.0  # ESRL weight of the (anchor, positive) pair
    beta: float = 1.0  # ESRL weight of the (anchor, erased) pair
    seed: int = 0
    amp: bool = True  # bf16 autocast and channels_last, on CUDA only
    optimizer: str = "sgd"  # FCAENet 4.2: SGD with momentum 0.9 and weight decay 1e-5
    momentum: float = 0.9
    weight_decay: float = 1e-5
    schedule: str = "constant"  # see schedules.py
    milestones: tuple = ()  # iterations at which the "paper" schedule divides lr by 10
    max_shift: float = 0.0  # augmentation: random flip, plus a shift of up to this share of the size
    positives: str = "batch"  # ESRL positive: "batch" (in-batch classmate) or "dataset" (FCAENet: whole set)
    srem_regions: int = 50  # SREM's regions per image (FCAENet: 50), cells of 32 px at 448 px, scaled
    erasing: str = "grid"  # what the erased view erases: grid | anchors (SREM) | random | parts (attention/erasing.py)
    workers: int | None = None  # Datasets: decoding worker processes (None: from the CPU count)
    compile: bool = False  # torch.compile the network's forward
    init_codes: str = "random"  # V at the start: "random" or "network" (initial_codes.py)
    patience: int = 0  # stop after this many iterations without a better validation mAP (0: run every iteration)


@dataclass
class AsymmetricHistory:
    loss: list = field(default_factory=list)  # mean loss per epoch
    val_map: list = field(default_factory=list)  # per iteration, validation queries vs V (mean over segments)
    lr: list = field(default_factory=list)  # learning rate of each iteration (schedules.py)
    best_iteration: int = -1


@dataclass
class AsymmetricState:
    """Everything that evolves during training, besides the network and optimizer."""
    V: torch.Tensor  # n x bits database codes, +-1 floats
    sample: torch.Tensor | None = None  # the m sampled database rows of this iteration
    U: torch.Tensor | None = None  # m x bits relaxed codes of the sample, filled batch by batch
    r: torch.Tensor | None = None  # similar / dissimilar pairs of the sample (soft similarity)
    best: dict | None = None  # {"score", "V", "model"} of the best iteration on validation
    iteration: int = 0  # the next iteration to run
    epoch: int = 0  # the next epoch of that iteration
    history: AsymmetricHistory = field(default_factory=AsymmetricHistory)


def _split(u, segments):
    return u.split(list(segments), 1)


def make_optimizer(model, cfg: AsymmetricConfig, params=None):
    """``cfg.optimizer`` over ``params`` (parameter groups; default all of ``model``'s parameters)."""
    params = model.parameters() if params is None else params
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise BadOption(f"optimizer must be one of {OPTIMIZERS}, got {cfg.optimizer!r}")


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
    ``images``: a tensor, a Dataset or its ``TrainLoader``; ``positives``: a ``DatasetPositives``
    when ESRL draws its positives from the whole training set; ``dist``: this process's place in
    data-parallel training (``training/distributed.py``: its shard of each batch, U gathered)."""
    device = labels.device
    amp = cfg.amp and device.type == "cuda"
    model.train()
    total, batches, m = 0.0, 0, len(state.sample)
    order = torch.randperm(m, generator=g).to(device)
    draw = None
    if "esrl" in cfg.terms and cfg.positives == "dataset":
        draw = positives or DatasetPositives(labels)
    source, mine = epoch_batches(images, order, state.sample, cfg, g, device, draw), []
    if dist is not None:
        source = dist.shard_batches(source)
    for pos, x, x_pos in source:
        idx = state.sample[pos]
        if amp and x.ndim == 4:
            x = x.to(memory_format=torch.channels_last)
            x_pos = None if x_pos is None else x_pos.to(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
            loss = batch_loss(model, x, labels[idx], pos, state, cfg, erase, labels, g, x_pos=x_pos)
        if dist is not None:  # the step on the whole batch (training/distributed.py)
            loss = loss * dist.loss_scale(len(pos), min(cfg.batch_size, m))
            mine.append(pos)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total, batches = total + loss.item(), batches + 1
    if dist is not None:
        return dist.finish_epoch(state, mine, total / max(batches, 1), g)
    return total / max(batches, 1)


def v_step(state: AsymmetricState, labels, cfg) -> None:
    """Step 3: V, one code segment at a time, from the sample's U (FCAENet Eq. 16-17)."""
    parts = [update_database_codes(Vk, Uk, state.sample, labels, cfg.gamma, cfg.similarity)
             for Vk, Uk in zip(_split(state.V, cfg.segments), _split(state.U, cfg.segments))]
    state.V = torch.cat(parts, 1)


def select(model, state: AsymmetricState, val, labels, cfg) -> None:
    """Step 4: model selection on the validation queries: keep the weights and V of the best iteration."""
    score = float(sum(evaluate_asymmetric(model, val[0], val[1], state.V, labels, cfg.segments)) / len(cfg.segments))
    state.history.val_map.append(score)
    if state.best is None or score > state.best["score"]:
        state.history.best_iteration = state.iteration + 1
        state.best = {"score": score, "V": state.V.clone(),
                      "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def _save(path, model, opt, state: AsymmetricState, g) -> None:
    save_checkpoint(path, {"model": model.state_dict(), "opt": opt.state_dict(), "V": state.V, "U": state.U,
                           "sample": state.sample, "r": state.r, "best": state.best, "iteration": state.iteration,
                           "epoch": state.epoch, "generator": g.get_state(), "history": asdict(state.history)})


def _resume(path, model, opt, g, device) -> AsymmetricState:
    saved = load_checkpoint(path)
    model.load_state_dict(saved["model"])
    opt.load_state_dict(saved["opt"])
    g.set_state(saved["generator"])
    return AsymmetricState(**{k: saved[k].to(device) for k in ("V", "U", "sample", "r")}, best=saved.get("best"),
                           iteration=saved["iteration"], epoch=saved["epoch"],
                           history=AsymmetricHistory(**saved["history"]))


# ---------------------------------------------------------------- the loop
def train_asymmetric(model, images, labels, cfg: AsymmetricConfig, checkpoint_dir=None, val=None,
                     stop_after_epochs: int | None = None, progress: bool = True, dist=None):
    """Train ``model`` asymmetrically on the database (images, labels); returns (V, history).

    ``val = (images, labels)``: validation queries ranked against V after every iteration; the
    weights and V of the best iteration are restored at the end (never the query split).
    ``stop_after_epochs`` interrupts the run after that many epochs (to test resuming).
    ``dist``: a ``training.distributed.Distributed`` (torchrun): DDP on every process, the V-step,
    validation and checkpoints on rank 0, and every process ends with rank 0's weights and V.
    """
    if not set(cfg.terms) <= set(TERMS):
        raise BadOption(f"loss terms must be among {TERMS}, got {tuple(cfg.terms)!r}")
    if cfg.erasing not in ERASERS:
        raise BadOption(f"erasing must be one of {ERASERS}, got {cfg.erasing!r}")
    if cfg.positives not in POSITIVES:
        raise BadOption(f"positives must be one of {POSITIVES}, got {cfg.positives!r}")
    if sum(cfg.segments) != model.bits:
        raise BadOption(f"segments {cfg.segments} must add up to the model's {model.bits} bits")
    device = next(model.parameters()).device
    labels = torch.as_tensor(check_labels(labels, "labels")).long().to(device)  # (n, 1) read as class ids
    if labels.ndim != 1 or len(labels) == 0:
        raise BadOption(f"labels must be the class ids (n,) of at least one image, got shape {tuple(labels.shape)}")
    g = torch.Generator().manual_seed(cfg.seed)
    state = AsymmetricState(V=initial_codes(model, images, labels, cfg, g))
    opt = make_optimizer(model, cfg)
    size = stack(images, [0]).shape[-1]
    erase = make_eraser(cfg.erasing, size, cfg.srem_regions)
    if not isinstance(images, torch.Tensor) and not has_views(images):  # one loader for the run: its workers persist
        images = train_loader(images, cfg, device, size)
    positives = DatasetPositives(labels) if "esrl" in cfg.terms and cfg.positives == "dataset" else None
    path = Path(checkpoint_dir) / "asymmetric.pt" if checkpoint_dir else None
    resume = path is not None and path.exists()
    if dist is not None:  # rank 0's answer, given once its last checkpoint is written: every rank reads the same
        resume = dist.decide(resume)
    if resume:
        state = _resume(path, model, opt, g, device)
    if cfg.amp and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    if cfg.compile:
        model.compile()  # in place: the state dict keeps its keys
    main, net = dist is None or dist.is_main, model if dist is None else dist.wrap(model)
    done, desc = 0, "+".join(("adsh", *cfg.terms)) + " iterations"
    for it in tqdm(range(state.iteration, cfg.iterations), desc=desc, disable=not (progress and main)):
        state.iteration = it
        set_lr(opt, lr_at(cfg.schedule, cfg.lr, it, cfg.milestones))
        if state.epoch == 0:
            state.history.lr.append(opt.param_groups[0]["lr"])
        if state.epoch == 0 or state.sample is None:
            sample(state, labels, cfg, g)
        for epoch in range(state.epoch, cfg.epochs):
            state.history.loss.append(train_epoch(net, opt, images, labels, state, cfg, erase, g, positives, dist))
            if epoch == cfg.epochs - 1:  # fix the network, learn V
                if main:
                    v_step(state, labels, cfg)
                if dist is not None:
                    state.V = dist.broadcast_codes(state.V)
                if val is not None and main:
                    select(model, state, val, labels, cfg)
            state.iteration, state.epoch = (it + 1, 0) if epoch == cfg.epochs - 1 else (it, epoch + 1)
            if path is not None and main:
                _save(path, model, opt, state, g)
            done += 1
            if stop_after_epochs is not None and done >= stop_after_epochs:
                return state.V, state.history
        state.epoch = 0
        if cfg.patience and dist is None and state.history.best_iteration > 0 \
                and state.iteration - state.history.best_iteration >= cfg.patience:
            break  # the validation plateau: no better iteration for `patience` iterations
    if state.best is not None:
        model.load_state_dict(state.best["model"])
        state.V = state.best["V"].to(device)
    if dist is not None:
        dist.broadcast_model(model)
        state.V = dist.broadcast_codes(state.V)
    return state.V, state.history


def evaluate_asymmetric(model, query_images, query_labels, V, db_labels, segments, ties="expected") -> list:
    """Tie-aware mAP of every code segment: network codes of the queries against V."""
    codes, db = encode(model, query_images), binarize(V)
    ql = query_labels.cpu() if hasattr(query_labels, "cpu") else query_labels
    dl = db_labels.cpu() if hasattr(db_labels, "cpu") else db_labels
    return segment_maps(codes, db, ql, dl, segments, ties)
