"""Learning-rate schedules of the asymmetric loop, by iteration (one solver round = one iteration).

    constant   lr_t = lr                                    (the course's short CPU runs)
    paper      lr_t = lr * 0.1^{#(milestones <= t)}         FCAENet section 4.2: SGD, momentum 0.9,
               weight decay 1e-5, lr 1e-3, batch 64, 20 epochs per iteration; 12/24 bits: 40
               iterations, lr / 10 at iterations 20 and 30; 32/48 bits: 60 iterations, lr / 10 at 30,
               45 and 55.

The rate is a pure function of the iteration, so a resumed run continues on the same schedule.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadOption

SCHEDULES = ("constant", "paper")


@dataclass(frozen=True)
class PaperSchedule:
    iterations: int
    epochs: int
    milestones: tuple


def paper_schedule(bits) -> PaperSchedule:
    """FCAENet's schedule for a code length (or the longest of several lengths learned at once)."""
    longest = max(bits) if isinstance(bits, (tuple, list)) else int(bits)
    if longest <= 24:
        return PaperSchedule(iterations=40, epochs=20, milestones=(20, 30))
    return PaperSchedule(iterations=60, epochs=20, milestones=(30, 45, 55))


def paper_milestones(bits, iterations: int) -> tuple:
    """The paper's milestones for ``bits`` scaled to a run of ``iterations``: a short run steps at
    the same shares of its length (20/40 and 30/40; or 30/60, 45/60 and 55/60)."""
    full = paper_schedule(bits)
    return tuple(max(1, round(m * iterations / full.iterations)) for m in full.milestones)


def lr_at(schedule: str, lr: float, iteration: int, milestones=()) -> float:
    """The learning rate of (0-based) ``iteration`` under ``schedule``."""
    if schedule == "constant":
        return lr
    if schedule == "paper":
        return lr * 0.1 ** sum(1 for m in milestones if iteration >= m)
    raise BadOption(f"schedule must be one of {SCHEDULES}, got {schedule!r}")


def set_lr(optimizer, value: float) -> None:
    """Set the rate of every parameter group; a group with a ``scale`` (e.g. a backbone fine-tuned
    at a tenth of the rate) gets ``value * scale``."""
    for group in optimizer.param_groups:
        group["lr"] = value * group.get("scale", 1.0)
