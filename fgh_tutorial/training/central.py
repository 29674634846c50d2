"""Single-network training with the central-similarity loss, with model selection on the
validation split (the course model of notebook 01; ``cache.py`` keeps it on disk).

It runs the training loop (``loop.py``) with one epoch per iteration: shuffle with a seeded
generator, augment the batch (random flip and shift; ``data.loader``'s ``InMemory`` for a tensor,
``Decoded`` for a Dataset), minimise the loss, and every ``eval_every`` epochs encode the database
and the validation queries and keep the weights with the best tie-aware mAP (``loop.Best``). The
query (test) split is never looked at. With a ``checkpoint_dir`` a checkpoint is written after
every epoch and an interrupted run resumes.

    L = (1/|S|) sum_s L_CSQ(u_s, y; C_s)      central similarity of each code segment s against its
                                               hash centres C_s (``losses.py``), + the net's aux_loss
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.loader import batch_source
from ..errors import BadOption
from ..models.encode import encode
from ..models.heads import HashingModel
from ..retrieval.metrics import mean_average_precision
from .loop import Best, Run, Steps, check_segments, fit, improves, optimizer_step, restore_best, resume
from .losses import central_similarity_loss, hash_centres


@dataclass
class History:
    loss: list = field(default_factory=list)  # mean training loss per epoch
    val_epochs: list = field(default_factory=list)
    val_map: list = field(default_factory=list)  # tie-aware mAP of validation queries
    best_epoch: int = -1


def shuffled_batches(n: int, batch_size: int, g: torch.Generator, exhaust: bool = False):
    """The rows of one random permutation of n in batches of ``batch_size``, the last partial batch
    dropped (batch norm needs more than one sample); read lazily. ``exhaust``: draw the second
    permutation torch's RandomSampler draws when it runs out (the draws of a Dataset's epoch as they
    have always been)."""
    order = torch.randperm(n, generator=g)
    for s in range(0, n - batch_size + 1, batch_size):
        yield order[s:s + batch_size]
    if exhaust:
        torch.randperm(n, generator=g)


class CentralSteps(Steps):
    """``epoch``: a pass over the shuffled batches (one iteration of the loop); ``end``: every
    ``eval_every`` epochs and at the last, the selection on the validation queries."""

    def __init__(self, model, images, labels, epochs, batch_size, max_shift, erase, workers, segments, centres,
                 sched, val, eval_every):
        self.model, self.images, self.labels, self.iterations, self.batch_size = model, images, labels, epochs, batch_size
        self.erase, self.segments, self.centres, self.sched, self.val, self.eval_every = erase, segments, centres, sched, val, eval_every
        self.device = next(model.parameters()).device
        self.source = batch_source(images, self.device, max_shift, workers, decode="workers")

    def epoch(self, run, iteration, epoch):
        model = self.model
        model.train()
        total, n = 0.0, 0
        plan = shuffled_batches(len(self.images), self.batch_size, run.g, exhaust=not isinstance(self.images, torch.Tensor))
        for idx, x, _ in self.source.batches(plan, run.g):
            y = torch.as_tensor(self.labels[idx]).to(self.device)
            if self.erase is not None:
                x, y = torch.cat([x, self.erase(model, x)[0]]), torch.cat([y, y])
            u = model(x, y) if getattr(model, "takes_labels", False) else model(x)
            loss = sum(central_similarity_loss(p, y, c) for p, c in zip(u.split(self.segments, 1), self.centres)) / len(self.segments)
            total, n = total + optimizer_step(run.opt, loss + getattr(model, "aux_loss", 0.0), self.sched), n + 1
        return total / max(n, 1)

    def end(self, run, iteration):
        if self.val is None or ((iteration + 1) % self.eval_every and iteration != self.iterations - 1):
            return
        m = mean_average_precision(encode(self.model, self.val[0]), encode(self.model, self.images), self.val[1], self.labels)
        run.history.val_epochs.append(iteration + 1)
        run.history.val_map.append(m)
        if improves(run.best, m):
            run.best, run.history.best_epoch = Best.of(self.model, iteration + 1, m), iteration + 1

    def entries(self):
        return {"sched": self.sched.state_dict()}

    def postfix(self, run):
        return {"loss": f"{run.history.loss[-1]:.3f}", **({"val_map": f"{run.best.score:.3f}"} if run.history.val_map else {})}


def train_hashing(model: HashingModel, images, labels: torch.Tensor, *, epochs: int,
                  batch_size: int = 64, lr: float = 3e-3, seed: int = 0, val=None, eval_every: int = 2,
                  max_shift: float = 0.0, erase=None, schedule: str = "onecycle", workers: int = 0,
                  segments=None, progress: bool = True, checkpoint_dir=None, callbacks=()) -> History:
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
    ``checkpoint_dir``: a checkpoint after every epoch, from which a later call resumes;
    ``callbacks``: ``loop`` callbacks after every epoch (``loop.StopAfter`` interrupts the run).
    """
    if schedule not in ("onecycle", "constant"):
        raise BadOption(f"schedule must be 'onecycle' or 'constant', got {schedule!r}")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    n_classes = int(labels.max()) + 1
    segments = list(segments or [model.bits])
    check_segments(segments, model)
    centres = [hash_centres(n_classes, b, seed + i).to(device) for i, b in enumerate(segments)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * max(1, len(images) // batch_size)
    sched = (torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps) if schedule == "onecycle"
             else torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0))
    run = Run(model, opt, g, History())
    path = Path(checkpoint_dir) / "central.pt" if checkpoint_dir else None
    central = CentralSteps(model, images, labels, epochs, batch_size, max_shift, erase, workers, segments, centres, sched,
                           val, eval_every)
    if (saved := resume(path, run)) is not None:
        sched.load_state_dict(saved["sched"])
    if fit(central, run, path, callbacks, progress, "training"):
        restore_best(run)
    return run.history
