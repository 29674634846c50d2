"""The one registry of trainable hashing systems.

A *system* is a network (``models.NETWORKS``) plus the way it is trained: a trainer of ``TRAINERS``
(the asymmetric loop by default, with a training method of ``training.asymmetric``) and its
default hyper-parameters. Every consumer reads this registry:
the command line's ``--method`` choices, run folders, the explorer, notebook 05's ablation and the
benchmarks. Adding a system is one entry here plus its module.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch

from .errors import BadOption
from .models import build_network
from .training.asymmetric import AsymmetricConfig, train_asymmetric
from .training.dnnh import train_dnnh
from .training.maxent import train_maxent
from .training.triplets import train_triplets

# trainer name -> fn(model, images, labels, cfg, **kwargs) -> (database codes +-1 float tensor, history).
# "asymmetric": codes V learned by ADSH's solver; the others: the network's codes of the database images.
TRAINERS = {"asymmetric": train_asymmetric, "dnnh": train_dnnh, "maxent": train_maxent, "triplets": train_triplets}


@dataclass(frozen=True)
class System:
    name: str  # command-line and run-folder name
    label: str  # display name in notebooks and the explorer
    arch: str  # the network, a key of models.NETWORKS
    method: str  # the asymmetric training method (loss recipe); the trainer's name for other trainers
    description: str
    defaults: dict = field(default_factory=dict)  # AsymmetricConfig fields this system sets
    trainer: str = "asymmetric"  # a key of TRAINERS

    def build(self, backbone, bits: int, n_classes: int):
        return build_network(self.arch, backbone, bits, n_classes)

    def config(self, cfg: AsymmetricConfig | None = None, **overrides) -> AsymmetricConfig:
        """``cfg`` (default: AsymmetricConfig()) with this system's method, defaults and ``overrides``."""
        return replace(cfg or AsymmetricConfig(), **{**self.defaults, "method": self.method, **overrides})

    def train(self, model, images, labels, cfg: AsymmetricConfig | None = None, **kwargs):
        """Train ``model``; returns (database codes as a +-1 float tensor, history): V from the solver
        for the asymmetric trainer, else the network's binary codes of the database images.
        ``kwargs`` go to the trainer."""
        return TRAINERS[self.trainer](model, images, labels, self.config(cfg), **kwargs)


SYSTEMS = {s.name: s for s in (
    System("adsh", "ADSH", "hashing", "adsh",
           "ADSH: backbone + hash layer, database codes learned by the discrete solver"),
    System("adsh+srem", "+SREM", "hashing", "adsh+srem",
           "ADSH with FCAENet's selective region erasing: erased views must keep their codes"),
    System("adsh+esrl", "+ESRL", "hashing", "adsh+esrl",
           "ADSH with FCAENet's enhanced space relation loss on (anchor, positive, anchor)"),
    System("fcaenet", "FCAENet", "hashing", "fcaenet",
           "FCAENet: ADSH + SREM erased views + ESRL on (anchor, positive, erased)"),
    System("exchnet", "ExchNet", "exchnet", "adsh",
           "ExchNet: part attention, part features exchanged with class anchors, ADSH codes"),
    System("dnnh", "DNNH", "dnnh", "dnnh",
           "DNNH: mlpconv block, global average pooling, sigmoid latent layer learned by classification",
           {"optimizer": "adamw", "lr": 1e-3}, trainer="dnnh"),
    System("pyramid", "TwoPyramid", "pyramid", "adsh",
           "two-pyramid hashing: multi-scale top features + grid-pooled low layers, consensus fusion, ADSH codes"),
    System("gan-maxent", "GAN-MaxEnt", "hashing", "maxent",
           "GAN-regularised: supervised loss on real images, maximum-entropy loss on DCGAN fakes",
           {"optimizer": "adamw", "lr": 1e-3}, trainer="maxent"),
    System("triplet-order", "OrderTriplet", "hashing", "triplets",
           "order-aware reweighted squared triplet loss, weights from the rank order of the codes",
           {"optimizer": "adamw", "lr": 1e-3}, trainer="triplets"),
)}
DESIGN_SYSTEMS = ("adsh", "fcaenet", "exchnet", "dnnh", "pyramid", "gan-maxent", "triplet-order")  # notebook 08
COURSE_SYSTEMS = ("adsh", "adsh+srem", "adsh+esrl", "fcaenet", "exchnet")  # notebook 05's ablation, the explorer


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


__all__ = ["AsymmetricConfig", "COURSE_SYSTEMS", "DESIGN_SYSTEMS", "SYSTEMS", "TRAINERS", "System", "describe", "get_system",
           "train_systems"]
