"""The one training loop. Every trainer (``asymmetric``: ADSH, FCAENet, ExchNet; ``symmetric``: DNNH,
GAN-MaxEnt, order-aware triplets; ``central``: the course model) plugs its steps (``Steps``) into it:

    for iteration t = t0 .. T-1:
        steps.begin(run, t, e0)                        learning rate, the iteration's sample
        for epoch e = e0 .. E-1:
            run.history.loss += [steps.epoch(run, t, e)]     one pass over the mini-batches
            if e = E-1: steps.end(run, t)              V-step; validation, ``Best`` kept if better
            (t, e) <- (t+1, 0) or (t, e+1)             the next epoch to run
            checkpoint (run + steps.entries()); callbacks: any true stops the run here
        stop early when steps.plateau(run)             (patience)

``resume`` reads the last checkpoint back into the ``Run`` (weights, optimizer, generator, history,
best, position) and hands the trainer its own entries, so an interrupted run ends in the same
state as an uninterrupted one. ``dist`` (``training/distributed.py``): rank 0's answer on whether
to resume, and checkpoints written by rank 0 only.

A callback is ``callback(run) -> bool`` called after every epoch's checkpoint; ``StopAfter(n)``
stops after n epochs (a run interrupted on purpose, resumed by the next call).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..errors import BadOption
from .checkpoints import load_checkpoint, save_checkpoint


@dataclass
class Best:
    """The best iteration (or epoch) on validation, the latest one without validation: its 1-based
    number, its score (-1 without validation), its weights and, for the asymmetric trainer, V."""
    iteration: int
    score: float
    model: dict
    codes: torch.Tensor | None = None

    @classmethod
    def of(cls, model, iteration: int, score: float | None = None, codes: torch.Tensor | None = None) -> "Best":
        weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return cls(iteration, -1.0 if score is None else score, weights, None if codes is None else codes.clone())


def improves(best: Best | None, score: float | None) -> bool:
    """Whether ``score`` (None: no validation, the latest iteration is kept) beats ``best``."""
    return best is None or score is None or score > best.score


@dataclass
class Run:
    """What the loop carries from epoch to epoch and writes to the checkpoint."""
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    g: torch.Generator  # every random draw of the run: samples, batches, augmentation, positives
    history: object  # a dataclass of lists; ``loss`` gets one entry per epoch
    best: Best | None = None
    iteration: int = 0  # the next iteration to run
    epoch: int = 0  # the next epoch of that iteration


class Steps:
    """What a trainer plugs into the loop; a step left as it is here does nothing."""
    iterations: int = 1
    epochs: int = 1  # per iteration

    def begin(self, run: Run, iteration: int, first_epoch: int) -> None:
        pass

    def epoch(self, run: Run, iteration: int, epoch: int) -> float:
        raise NotImplementedError

    def end(self, run: Run, iteration: int) -> None:
        pass

    def plateau(self, run: Run) -> bool:
        return False

    def entries(self) -> dict:
        """The trainer's own checkpoint entries (tensors, numbers, lists and dicts)."""
        return {}

    def postfix(self, run: Run) -> dict:
        """What the progress bar shows after an iteration."""
        return {}


class StopAfter:
    """A callback that stops the run after ``epochs`` epochs of this call (one instance per call)."""

    def __init__(self, epochs: int):
        self.epochs, self.done = int(epochs), 0

    def __call__(self, run: Run) -> bool:
        self.done += 1
        return self.done >= self.epochs


def check_segments(segments, model) -> None:
    """The code lengths learned at once must fill the network's code."""
    if sum(segments) != model.bits:
        raise BadOption(f"segments {segments} must add up to the model's {model.bits} bits")


def autocast(amp: bool):
    """bf16 autocast on CUDA when ``amp``, else nothing."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext()


def optimizer_step(opt, loss, sched=None) -> float:
    """One gradient step on ``loss`` (and one of the per-step schedule ``sched``); returns the loss."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if sched is not None:
        sched.step()
    return loss.item()


def save(path, run: Run, steps: Steps) -> None:
    best = None if run.best is None else dict(vars(run.best))
    save_checkpoint(path, {"model": run.model.state_dict(), "opt": run.opt.state_dict(), "generator": run.g.get_state(),
                           "history": asdict(run.history), "best": best, "iteration": run.iteration,
                           "epoch": run.epoch, **steps.entries()})


def resume(path, run: Run, dist=None) -> dict | None:
    """The checkpoint at ``path`` read back into ``run`` when there is one (rank 0's answer under
    ``dist``); returns it, for the trainer's own entries, or None."""
    found = path is not None and Path(path).exists()
    if dist is not None:  # rank 0's answer, given once its last checkpoint is written: every rank reads the same
        found = dist.decide(found)
    if not found:
        return None
    saved = load_checkpoint(path)
    run.model.load_state_dict(saved["model"])
    run.opt.load_state_dict(saved["opt"])
    run.g.set_state(saved["generator"])
    run.history = type(run.history)(**saved["history"])
    run.best = None if saved["best"] is None else Best(**saved["best"])
    run.iteration, run.epoch = saved["iteration"], saved["epoch"]
    return saved


def fit(steps: Steps, run: Run, path=None, callbacks=(), progress: bool = True, desc: str = "training",
        main: bool = True) -> bool:
    """Run the loop from where ``run`` stands; False when a callback stopped it."""
    bar = tqdm(range(run.iteration, steps.iterations), desc=desc, disable=not progress)
    for it in bar:
        run.iteration = it
        steps.begin(run, it, run.epoch)
        for epoch in range(run.epoch, steps.epochs):
            run.history.loss.append(steps.epoch(run, it, epoch))
            last = epoch == steps.epochs - 1
            if last:
                steps.end(run, it)
            run.iteration, run.epoch = (it + 1, 0) if last else (it, epoch + 1)
            if path is not None and main:
                save(path, run, steps)
            if any([callback(run) for callback in callbacks]):
                return False
        if progress and (shown := steps.postfix(run)):
            bar.set_postfix(**shown)
        if steps.plateau(run):
            break
    return True


def restore_best(run: Run) -> None:
    """The weights of the best iteration back into the network (when one was kept)."""
    if run.best is not None:
        run.model.load_state_dict(run.best.model)


__all__ = ["Best", "Run", "StopAfter", "Steps", "autocast", "check_segments", "fit", "improves", "optimizer_step",
           "restore_best", "resume", "save"]
