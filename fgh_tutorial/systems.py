"""The one registry of trainable hashing systems.

A *system* is everything a run needs to know about a way of hashing: its network (a class of
``models`` built as ``Network(backbone, bits, n_classes)``, which also names its CAM layer), its
trainer (a function of ``training``), the loss terms the asymmetric trainer adds to ADSH's
(``training.asymmetric.TERMS``: SREM's erased views, ESRL), what it can train on besides images
(a frozen backbone's pooled features, the cached maps of frozen stages) and its default
hyper-parameters. Every consumer reads this registry and nothing else: the command line's
``--method`` choices and checks, run folders, the explorer, the notebooks and the benchmarks.
Adding a system is one entry (``register``) plus its module.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable

import torch

from .errors import BadOption
from .models import DNNH, ExchNet, HashingModel, TwoPyramid
from .training.asymmetric import TERMS, AsymmetricConfig, train_asymmetric
from .training.dnnh import train_dnnh
from .training.maxent import train_maxent
from .training.triplets import train_triplets

INPUTS = ("images", "features", "maps")  # images; a frozen backbone's pooled features; frozen stages' maps


@dataclass(frozen=True)
class System:
    name: str  # command-line and run-folder name
    label: str  # display name in notebooks and the explorer
    network: Callable  # (backbone, bits, n_classes) -> nn.Module with forward -> u and cam_layer()
    description: str
    trainer: Callable = train_asymmetric  # (model, images, labels, cfg, **kwargs) -> (database codes, history)
    terms: tuple = ()  # the asymmetric trainer's loss terms beside ADSH's, of training.asymmetric.TERMS
    trains_on: tuple = ("images",)  # of INPUTS: "features" = --freeze-backbone, "maps" = --train-top K
    defaults: dict = field(default_factory=dict)  # AsymmetricConfig fields this system sets

    def __post_init__(self):
        if not set(self.terms) <= set(TERMS) or not set(self.trains_on) <= set(INPUTS):
            raise BadOption(f"system {self.name!r}: loss terms must be among {TERMS} and inputs among {INPUTS}")

    @property
    def asymmetric(self) -> bool:
        """Database codes learned by ADSH's solver (V) rather than the network's codes of the images."""
        return self.trainer is train_asymmetric

    def build(self, backbone, bits: int, n_classes: int):
        return self.network(backbone, bits, n_classes)

    def config(self, cfg: AsymmetricConfig | None = None, **overrides) -> AsymmetricConfig:
        """``cfg`` (default: AsymmetricConfig()) with this system's loss terms, defaults and ``overrides``."""
        return replace(cfg or AsymmetricConfig(), **{**self.defaults, "terms": self.terms, **overrides})

    def train(self, model, images, labels, cfg: AsymmetricConfig | None = None, **kwargs):
        """Train ``model``; returns (database codes as a +-1 float tensor, history): V from the solver
        for the asymmetric trainer, else the network's binary codes of the database images.
        ``kwargs`` go to the trainer."""
        return self.trainer(model, images, labels, self.config(cfg), **kwargs)


SYSTEMS: dict[str, System] = {}


def register(system: System) -> System:
    """Add ``system`` to the registry (its name and label must be new); returns it."""
    taken = {n for s in SYSTEMS.values() for n in (s.name, s.label)}
    if {system.name, system.label} & taken:
        raise BadOption(f"a system named {system.name!r} or labelled {system.label!r} is already registered")
    SYSTEMS[system.name] = system
    return system


ADAMW = {"optimizer": "adamw", "lr": 1e-3}
for _system in (
    System("adsh", "ADSH", HashingModel,
           "ADSH: backbone + hash layer, database codes learned by the discrete solver",
           trains_on=("images", "features", "maps")),
    System("adsh+srem", "+SREM", HashingModel,
           "ADSH with FCAENet's selective region erasing: erased views must keep their codes", terms=("srem",)),
    System("adsh+esrl", "+ESRL", HashingModel,
           "ADSH with FCAENet's enhanced space relation loss on (anchor, positive, anchor)", terms=("esrl",),
           trains_on=("images", "features", "maps")),
    System("fcaenet", "FCAENet", HashingModel,
           "FCAENet: ADSH + SREM erased views + ESRL on (anchor, positive, erased)", terms=("srem", "esrl")),
    System("exchnet", "ExchNet", ExchNet,
           "ExchNet: part attention, part features exchanged with class anchors, ADSH codes",
           trains_on=("images", "maps")),
    System("dnnh", "DNNH", DNNH,
           "DNNH: mlpconv block, global average pooling, sigmoid latent layer learned by classification",
           trainer=train_dnnh, defaults=ADAMW),
    System("pyramid", "TwoPyramid", TwoPyramid,
           "two-pyramid hashing: multi-scale top features + grid-pooled low layers, consensus fusion, ADSH codes"),
    System("gan-maxent", "GAN-MaxEnt", HashingModel,
           "GAN-regularised: supervised loss on real images, maximum-entropy loss on DCGAN fakes",
           trainer=train_maxent, defaults=ADAMW),
    System("triplet-order", "OrderTriplet", HashingModel,
           "order-aware reweighted squared triplet loss, weights from the rank order of the codes",
           trainer=train_triplets, defaults=ADAMW),
):
    register(_system)
ABLATION = ("adsh", "adsh+srem", "adsh+esrl", "fcaenet")  # ADSH and FCAENet's two terms alone and together
COURSE_SYSTEMS = (*ABLATION, "exchnet")  # notebook 05's comparison, the explorer's shipped bundle
DESIGN_SYSTEMS = ("adsh", "fcaenet", "exchnet", "dnnh", "pyramid", "gan-maxent", "triplet-order")  # notebook 08


def trainable_on(what: str) -> list:
    """The names of the systems that can train on ``what`` (of INPUTS)."""
    return [s.name for s in SYSTEMS.values() if what in s.trains_on]


def get_system(name: str) -> System:
    """A system by its name (``"fcaenet"``) or its label (``"FCAENet"``)."""
    for s in SYSTEMS.values():
        if name in (s.name, s.label):
            return s
    raise BadOption(f"unknown system {name!r}; choose one of {list(SYSTEMS)}")


def describe() -> str:
    """One line per system, for ``--help``."""
    width = max(len(name) for name in SYSTEMS)
    return "\n".join(f"  {s.name:<{width}} {s.description}" for s in SYSTEMS.values())


def train_systems(backbone, db, val, cfg: AsymmetricConfig, names=COURSE_SYSTEMS, progress: bool = True) -> dict:
    """Train each named system from a copy of ``backbone`` under the same seed, on the same
    samples: {label: (model in eval mode, V, history)}."""
    systems = [get_system(n) for n in names]
    n_classes = int(torch.as_tensor(db[1]).max()) + 1
    runs = {}
    for system in systems:
        torch.manual_seed(cfg.seed)
        model = system.build(copy.deepcopy(backbone), sum(cfg.segments), n_classes)
        V, hist = system.train(model, db[0], db[1], cfg, val=val, progress=progress)
        runs[system.label] = (model.eval(), V, hist)
    return runs


__all__ = ["ABLATION", "AsymmetricConfig", "COURSE_SYSTEMS", "DESIGN_SYSTEMS", "INPUTS", "SYSTEMS", "System", "describe",
           "get_system", "register", "train_systems", "trainable_on"]
