"""The training config: one frozen record of every setting of a training run, checked when it is
built, for the asymmetric trainer (ADSH, FCAENet, ExchNet) and the symmetric ones that run under
the same budget (DNNH, GAN-MaxEnt, order-aware triplets).

Its choice fields are ``Literal`` types whose choices are those of the module that implements them
(``schedules``, ``solver``, ``positives``, ``initial_codes``, ``attention.erasing``; the loss terms
and optimizers here); a value outside them raises a one-line ``BadOption`` naming the field and its
choices when the config is built (or ``dataclasses.replace``-d), before any work. A config is never
changed in place: ``replace(cfg, lr=1e-4)`` makes another.

``AsymmetricConfig`` is the same class under its first name.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, get_args, get_origin, get_type_hints

from ..attention.erasing import ERASERS
from ..errors import BadOption
from .initial_codes import INITS
from .positives import POSITIVES
from .schedules import SCHEDULES
from .solver import SIMILARITIES

TERMS = ("srem", "esrl")  # loss terms beside ADSH's: erased views (SREM), the enhanced space relation loss
OPTIMIZERS = ("sgd", "adamw")

Term = Literal[TERMS]
Optimizer = Literal[OPTIMIZERS]
Schedule = Literal[SCHEDULES]
Similarity = Literal[SIMILARITIES]
Positives = Literal[POSITIVES]
Erasing = Literal[ERASERS]
InitCodes = Literal[INITS]
NAMES = {"terms": "terms (the loss terms)"}  # how an error names a field, where its name is not enough


@dataclass(frozen=True)
class TrainConfig:
    segments: tuple = (48,)  # code lengths learned at once (one head segment and one V each)
    iterations: int = 3
    epochs: int = 1  # network epochs per iteration
    samples: int = 2000  # m, database points sampled per iteration
    gamma: float = 200.0
    lr: float = 1e-3
    batch_size: int = 64
    similarity: Similarity = "soft"
    terms: tuple[Term, ...] = ()  # () is ADSH, ("srem", "esrl") FCAENet (a system names its terms, systems.py)
    esrl_weight: float = 1.0
    alpha: float = 1.0  # ESRL weight of the (anchor, positive) pair
    beta: float = 1.0  # ESRL weight of the (anchor, erased) pair
    seed: int = 0
    amp: bool = True  # bf16 autocast and channels_last, on CUDA only
    optimizer: Optimizer = "sgd"  # FCAENet 4.2: SGD with momentum 0.9 and weight decay 1e-5
    momentum: float = 0.9
    weight_decay: float = 1e-5
    schedule: Schedule = "constant"  # see schedules.py
    milestones: tuple = ()  # iterations at which the "paper" schedule divides lr by 10
    max_shift: float = 0.0  # augmentation: random flip, plus a shift of up to this share of the size
    positives: Positives = "batch"  # ESRL positive: "batch" (in-batch classmate) or "dataset" (FCAENet: whole set)
    srem_regions: int = 50  # SREM's regions per image (FCAENet: 50), cells of 32 px at 448 px, scaled
    erasing: Erasing = "grid"  # what the erased view erases: grid | anchors (SREM) | random | parts (attention/erasing.py)
    workers: int | None = None  # Datasets: decoding worker processes (None: from the CPU count)
    compile: bool = False  # torch.compile the network's forward
    init_codes: InitCodes = "random"  # V at the start: "random" or "network" (initial_codes.py)
    patience: int = 0  # stop after this many iterations without a better validation mAP (0: run every iteration)

    def __post_init__(self):
        for name, choices, many in _choice_fields():
            value = getattr(self, name)
            if many and (isinstance(value, str) or not set(value) <= set(choices)):
                raise BadOption(f"{NAMES.get(name, name)} must be among {choices}, got {value!r}")
            if not many and value not in choices:
                raise BadOption(f"{NAMES.get(name, name)} must be one of {choices}, got {value!r}")


def _choice_fields() -> list:
    """(name, choices, whether a tuple of them) of every ``Literal`` field of ``TrainConfig``."""
    global _CHOICES
    if _CHOICES is None:
        hints = get_type_hints(TrainConfig)
        _CHOICES = []
        for f in fields(TrainConfig):
            hint = hints[f.name]
            many = get_origin(hint) is tuple
            inner = get_args(hint)[0] if many else hint
            if get_origin(inner) is Literal:
                _CHOICES.append((f.name, get_args(inner), many))
    return _CHOICES


_CHOICES = None
AsymmetricConfig = TrainConfig

__all__ = ["AsymmetricConfig", "OPTIMIZERS", "TERMS", "TrainConfig"]
