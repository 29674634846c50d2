"""Single-network training with the central-similarity loss, with model selection on the
validation split (the course model of notebook 01; ``cache.py`` keeps it on disk).

The loop is plain PyTorch: shuffle with a seeded generator, augment the batch (random flip and
shift), minimise the loss, and every ``eval_every`` epochs encode the database and the
validation queries and keep the weights with the best tie-aware mAP. The query (test) split is
never looked at.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ..errors import BadOption
from ..data.transforms import augment
from ..models.encode import encode
from ..models.heads import HashingModel
from .losses import central_similarity_loss, hash_centres
from ..retrieval.metrics import mean_average_precision


@dataclass
class History:
    loss: list = field(default_factory=list)  # mean training loss per epoch
    val_epochs: list = field(default_factory=list)
    val_map: list = field(default_factory=list)  # tie-aware mAP of validation queries
    best_epoch: int = -1


def _batches(images, labels, batch_size, generator, workers):
    """Shuffled (x, y) batches of a tensor pair or of a Dataset of (x, y); the last partial
    batch is dropped (batch-norm needs more than one sample)."""
    if isinstance(images, torch.Tensor):
        order = torch.randperm(len(images), generator=generator)
        for s in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[s:s + batch_size]
            yield images[idx], labels[idx]
    else:
        yield from torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=True, generator=generator,
                                               drop_last=True, num_workers=workers)


def train_hashing(model: HashingModel, images, labels: torch.Tensor, *, epochs: int,
                  batch_size: int = 64, lr: float = 3e-3, seed: int = 0, val=None, eval_every: int = 2,
                  max_shift: float = 0.0, erase=None, schedule: str = "onecycle", workers: int = 0,
                  segments=None, progress: bool = True) -> History:
    """Train ``model`` with the central-similarity loss on (images, labels); ``images`` is a
    tensor (N, 3, H, W) or a Dataset of (x, y) pairs whose labels are ``labels``.

    ``val = (val_images, val_labels)`` enables model selection: the database codes are the
    model's codes of ``images``; the best epoch's weights are restored at the end.
    ``erase(model, x) -> (x_erased, mask)`` (e.g. ``srem.SREM``) adds an erased copy of every
    batch with the same labels: the erased image must still hash to its class's centre.
    ``schedule``: "onecycle" (warm-up then annealing, for training from scratch) or "constant"
    (for fine-tuning a trained model, which a warm-up to a high rate would undo).
    ``segments``: code lengths that split the model's output (e.g. (12, 24, 32, 48) for a
    116-bit head): one backbone learns several code lengths at once, each segment with its own
    hash centres. A model with ``takes_labels`` (ExchNet) gets the labels in its forward pass
    and may add an ``aux_loss`` (its attention constraints).
    """
    if schedule not in ("onecycle", "constant"):
        raise BadOption(f"schedule must be 'onecycle' or 'constant', got {schedule!r}")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    n_classes = int(labels.max()) + 1
    segments = list(segments or [model.bits])
    if sum(segments) != model.bits:
        raise BadOption(f"segments {segments} must add up to the model's {model.bits} bits")
    centres = [hash_centres(n_classes, b, seed + i).to(device) for i, b in enumerate(segments)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * max(1, len(images) // batch_size)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps) if schedule == "onecycle"
             else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0))
    hist, best_state, best = History(), None, -1.0
    bar = tqdm(range(epochs), desc="training", disable=not progress)
    for epoch in bar:
        model.train()
        total, n = 0.0, 0
        for x, y in _batches(images, labels, batch_size, g, workers):
            x, y = augment(x, g, max_shift).to(device), torch.as_tensor(y).to(device)
            if erase is not None:
                x, y = torch.cat([x, erase(model, x)[0]]), torch.cat([y, y])
            u = model(x, y) if getattr(model, "takes_labels", False) else model(x)
            loss = sum(central_similarity_loss(part, y, c) for part, c in zip(u.split(segments, 1), centres)) / len(segments)
            loss = loss + getattr(model, "aux_loss", 0.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, n = total + loss.item(), n + 1
        hist.loss.append(total / max(n, 1))
        if val is not None and ((epoch + 1) % eval_every == 0 or epoch == epochs - 1):
            m = mean_average_precision(encode(model, val[0]), encode(model, images), val[1], labels)
            hist.val_epochs.append(epoch + 1)
            hist.val_map.append(m)
            if m > best:
                best, best_state, hist.best_epoch = m, copy.deepcopy(model.state_dict()), epoch + 1
        bar.set_postfix(loss=f"{hist.loss[-1]:.3f}", **({"val_map": f"{best:.3f}"} if hist.val_map else {}))
    if best_state is not None:
        model.load_state_dict(best_state)
    return hist
