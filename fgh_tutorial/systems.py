"""The one registry of trainable hashing systems.

A *system* is a network (``models.NETWORKS``) plus the way it is trained (a training method of
``training.asymmetric`` with its default hyper-parameters). Every consumer reads this registry:
the command line's ``--method`` choices, run folders, the explorer, notebook 05's ablation and the
benchmarks. Adding a system is one entry here plus its module.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import torch

from .models import build_network
from .training.asymmetric import AsymmetricConfig, train_asymmetric


@dataclass(frozen=True)
class System:
    name: str  # command-line and run-folder name
    label: str  # display name in notebooks and the explorer
    arch: str  # the network, a key of models.NETWORKS
    method: str  # the asymmetric training method (loss recipe)
    description: str
    defaults: dict = field(default_factory=dict)  # AsymmetricConfig fields this system sets

    def build(self, backbone, bits: int, n_classes: int):
        return build_network(self.arch, backbone, bits, n_classes)

    def config(self, cfg: AsymmetricConfig | None = None, **overrides) -> AsymmetricConfig:
        """``cfg`` (default: AsymmetricConfig()) with this system's method, defaults and ``overrides``."""
        return replace(cfg or AsymmetricConfig(), **{**self.defaults, "method": self.method, **overrides})

    def train(self, model, images, labels, cfg: AsymmetricConfig | None = None, **kwargs):
        """Train ``model``; returns (database codes V, history). ``kwargs`` go to the trainer."""
        return train_asymmetric(model, images, labels, self.config(cfg), **kwargs)


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
)}
COURSE_SYSTEMS = ("adsh", "adsh+srem", "adsh+esrl", "fcaenet", "exchnet")  # notebook 05's ablation, the explorer


def get_system(name: str) -> System:
    """A system by its name (``"fcaenet"``) or its label (``"FCAENet"``)."""
    for s in SYSTEMS.values():
        if name in (s.name, s.label):
            return s
    raise ValueError(f"unknown system {name!r}; choose one of {list(SYSTEMS)}")


def describe() -> str:
    """One line per system, for ``--help``."""
    return "\n".join(f"  {s.name:<10} {s.description}" for s in SYSTEMS.values())


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


__all__ = ["AsymmetricConfig", "COURSE_SYSTEMS", "SYSTEMS", "System", "describe", "get_system", "train_systems"]
