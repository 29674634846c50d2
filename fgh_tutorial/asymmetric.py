"""Asymmetric training (ADSH, and FCAENet on top of it): the network learns the query codes,
the database codes V are learned directly by the discrete solver.

Each *iteration* samples m database points, then alternates:

1. fix V, train the network on the sample for ``epochs`` epochs with the ADSH loss
   (plus, for FCAENet, the erased views of SREM and the ESRL loss on (anchor, positive, erased));
2. fix the network, update V bit by bit (``solver.update_database_codes``).

At test time the database codes are V (asymmetric) and the queries are encoded by the network.
The state is checkpointed after every epoch, and ``train_asymmetric`` resumes from the last
checkpoint in ``checkpoint_dir``: an interrupted run ends in the same state as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import copy
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .data import stack
from .encode import encode
from .exchange import ExchNet
from .heads import HashingModel, binarize
from .losses import adsh_loss, esrl, soft_similarity
from .metrics import mean_average_precision
from .solver import similarity_ratio, update_database_codes
from .srem import SREM
from .train import augment

METHODS = ("adsh", "adsh+srem", "adsh+esrl", "fcaenet")
# The course's five systems (notebook 05, the explorer): name -> (training method, network).
COURSE_METHODS = {"ADSH": ("adsh", "hashing"), "+SREM": ("adsh+srem", "hashing"), "+ESRL": ("adsh+esrl", "hashing"),
                  "FCAENet": ("fcaenet", "hashing"), "ExchNet": ("adsh", "exchnet")}


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
    method: str = "adsh"  # adsh | adsh+srem | adsh+esrl | fcaenet (SREM + ESRL)
    esrl_weight: float = 1.0
    alpha: float = 1.0  # ESRL weight of the (anchor, positive) pair
    beta: float = 1.0  # ESRL weight of the (anchor, erased) pair
    seed: int = 0
    amp: bool = True  # bf16 autocast and channels_last, on CUDA only


@dataclass
class AsymmetricHistory:
    loss: list = field(default_factory=list)  # mean loss per epoch
    val_map: list = field(default_factory=list)  # per iteration, validation queries vs V (mean over segments)
    best_iteration: int = -1


def _uses(cfg, part):
    return {"srem": cfg.method in ("adsh+srem", "fcaenet"), "esrl": cfg.method in ("adsh+esrl", "fcaenet")}[part]


def _split(u, segments):
    return u.split(list(segments), 1)


def _batch_loss(model, x, y, pos, sample, state, cfg, erase, labels, g):
    """ADSH loss per code segment, plus the erased view (SREM) and ESRL where the method says."""
    V = state["V"]
    S = soft_similarity(y, labels, cfg.similarity, r=state["r"])  # r of the whole sample, not the batch
    u = model(x, y) if getattr(model, "takes_labels", False) else model(x)
    state["U"][pos] = u.detach().float()
    rows = sample[pos]
    views = [u]
    if _uses(cfg, "srem"):
        views.append(model(erase(model, x)[0]))
    loss = 0.0
    for view in views:
        for part, Vk in zip(_split(view, cfg.segments), _split(V, cfg.segments)):
            loss = loss + adsh_loss(part, Vk, S, Vk[rows], cfg.gamma) / len(cfg.segments)
    if _uses(cfg, "esrl"):
        u_pos = model(_positives(x, y, g))
        u_erased = views[1] if len(views) > 1 else u
        loss = loss + cfg.esrl_weight * esrl(u, u_pos, u_erased, cfg.alpha, cfg.beta)
    return loss + getattr(model, "aux_loss", 0.0)


def _positives(x, y, g):
    """For each image, a random other image of the batch with the same label (itself when alone)."""
    weights = (y[:, None] == y[None, :]).float().cpu()
    weights.fill_diagonal_(0)
    alone = weights.sum(1) == 0
    weights[alone, torch.nonzero(alone)[:, 0]] = 1
    return x[torch.multinomial(weights, 1, generator=g)[:, 0].to(x.device)]


def _checkpoint(path, model, opt, state, hist, it, epoch, g):
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "V": state["V"], "U": state["U"],
                "sample": state["sample"], "r": state["r"], "best": state.get("best"), "iteration": it,
                "epoch": epoch, "generator": g.get_state(), "history": asdict(hist)}, tmp)
    tmp.replace(path)


def _select(model, state, hist, it, val, labels, cfg):
    """Model selection on the validation queries: keep the weights and V of the best iteration."""
    score = float(sum(evaluate_asymmetric(model, val[0], val[1], state["V"], labels, cfg.segments)) / len(cfg.segments))
    hist.val_map.append(score)
    if state.get("best") is None or score > state["best"]["score"]:
        hist.best_iteration = it + 1
        state["best"] = {"score": score, "V": state["V"].clone(),
                         "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}


def train_asymmetric(model, images, labels, cfg: AsymmetricConfig, checkpoint_dir=None, val=None,
                     stop_after_epochs: int | None = None, progress: bool = True):
    """Train ``model`` asymmetrically on the database (images, labels); returns (V, history).

    ``val = (images, labels)``: validation queries ranked against V after every iteration; the
    weights and V of the best iteration are restored at the end (never the query split).
    ``stop_after_epochs`` interrupts the run after that many epochs (to test resuming).
    """
    if cfg.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {cfg.method!r}")
    if sum(cfg.segments) != model.bits:
        raise ValueError(f"segments {cfg.segments} must add up to the model's {model.bits} bits")
    device = next(model.parameters()).device
    labels = torch.as_tensor(labels).to(device)
    n, m = len(labels), min(cfg.samples, len(labels))
    g = torch.Generator().manual_seed(cfg.seed)
    V = torch.where(torch.randn(n, model.bits, generator=g) >= 0, 1.0, -1.0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=1e-5)
    erase = SREM.for_image_size(stack(images, [0]).shape[-1])
    hist, start_it, start_epoch, state = AsymmetricHistory(), 0, 0, {"V": V}
    path = Path(checkpoint_dir) / "asymmetric.pt" if checkpoint_dir else None
    if path is not None and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=False)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        g.set_state(saved["generator"])
        state = {k: saved[k].to(device) for k in ("V", "U", "sample", "r")}
        state["best"] = saved.get("best")
        hist = AsymmetricHistory(**saved["history"])
        start_it, start_epoch = saved["iteration"], saved["epoch"] + 1
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    amp = cfg.amp and device.type == "cuda"
    if amp:
        model = model.to(memory_format=torch.channels_last)
    done = 0
    for it in tqdm(range(start_it, cfg.iterations), desc=f"{cfg.method} iterations", disable=not progress):
        if start_epoch == 0 or "sample" not in state:
            sample = torch.randperm(n, generator=g)[:m].to(device)
            state.update(sample=sample, U=torch.zeros(m, model.bits, device=device),
                         r=similarity_ratio(labels[sample], labels, int(labels.max()) + 1).float())
        for epoch in range(start_epoch, cfg.epochs):
            model.train()
            total, batches = 0.0, 0
            order = torch.randperm(m, generator=g).to(device)
            for s in range(0, max(1, m - cfg.batch_size + 1), cfg.batch_size):
                pos = order[s:s + cfg.batch_size]
                idx = state["sample"][pos]
                x = augment(stack(images, idx.cpu()), g).to(device)
                if amp:
                    x = x.to(memory_format=torch.channels_last)
                ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()
                with ctx:
                    loss = _batch_loss(model, x, labels[idx], pos, state["sample"], state, cfg, erase, labels, g)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total, batches = total + loss.item(), batches + 1
            hist.loss.append(total / max(batches, 1))
            if epoch == cfg.epochs - 1:  # fix the network, learn V
                state["V"] = _update_segments(state, labels, cfg)
                if val is not None:
                    _select(model, state, hist, it, val, labels, cfg)
            if path is not None:
                _checkpoint(path, model, opt, state, hist, it, epoch, g)
            done += 1
            if stop_after_epochs is not None and done >= stop_after_epochs:
                return state["V"], hist
        start_epoch = 0
    if state.get("best") is not None:
        model.load_state_dict(state["best"]["model"])
        state["V"] = state["best"]["V"].to(device)
    return state["V"], hist


def _update_segments(state, labels, cfg):
    parts = [update_database_codes(Vk, Uk, state["sample"], labels, cfg.gamma, cfg.similarity).float()
             for Vk, Uk in zip(_split(state["V"], cfg.segments), _split(state["U"], cfg.segments))]
    return torch.cat(parts, 1)


def evaluate_asymmetric(model, query_images, query_labels, V, db_labels, segments, ties="expected") -> list:
    """Tie-aware mAP of every code segment: network codes of the queries against V."""
    codes = encode(model, query_images)
    db = binarize(V.cpu().numpy())  # the solver's sign(0) = 0 counts as +1 in a stored code
    out, start = [], 0
    for b in segments:
        out.append(mean_average_precision(codes[:, start:start + b], db[:, start:start + b],
                                          query_labels.cpu() if hasattr(query_labels, "cpu") else query_labels,
                                          db_labels.cpu() if hasattr(db_labels, "cpu") else db_labels, ties=ties))
        start += b
    return out


def method_model(arch: str, backbone, bits: int, n_classes: int):
    """The network of a course system: ``"hashing"`` (backbone + hash layer) or ``"exchnet"``."""
    if arch == "exchnet":
        return ExchNet(backbone, bits, n_classes)
    if arch == "hashing":
        return HashingModel(backbone, bits)
    raise ValueError(f"arch must be 'hashing' or 'exchnet', got {arch!r}")


def train_methods(backbone, db, val, cfg: AsymmetricConfig, names=tuple(COURSE_METHODS), progress: bool = True) -> dict:
    """Train each named course system (``COURSE_METHODS``) from a copy of ``backbone`` under the
    same seed, on the same samples: {name: (model in eval mode, V, history)}."""
    unknown = [n for n in names if n not in COURSE_METHODS]
    if unknown:
        raise ValueError(f"unknown system(s) {unknown}; choose from {list(COURSE_METHODS)}")
    n_classes = int(torch.as_tensor(db[1]).max()) + 1
    runs = {}
    for name in names:
        method, arch = COURSE_METHODS[name]
        torch.manual_seed(cfg.seed)
        model = method_model(arch, copy.deepcopy(backbone), sum(cfg.segments), n_classes)
        V, hist = train_asymmetric(model, db[0], db[1], replace(cfg, method=method), val=val, progress=progress)
        runs[name] = (model.eval(), V, hist)
    return runs
