"""Partial fine-tuning, ``train --train-top K``: the last K stages of the backbone (``models/stages.py``)
and the hash layer are trained, asymmetrically, on the cached output maps of the frozen stages below:

    maps = frozen stages(image), and of its mirror image     computed once, cached (stage_maps.py)
    u    = hash layer(pool(top K stages(maps)))              the ADSH loop (asymmetric.py) on the maps

The network trained on the maps is the run's own network with its bottom cut off; it shares the
run's modules, so when training ends the ordinary network (frozen stages, trained top, hash layer)
is the run's model, and ``evaluate``, ``query``, ``encode`` and the explorer read it as any other.

What acts on cached maps: ADSH and ESRL (losses on the codes, ESRL's positives are other maps of the
anchor's class), and ExchNet's part attention and feature exchange, which act on the map of the
stage below the last one: the top computes it for any K (ResNets and minires, the backbones ExchNet
is built on). SREM does not: it erases regions of the input *pixels* chosen by the network's
attention and encodes the erased image again, and the cache holds no pixels (erasing the cached maps
would be another method). The systems that train here say so in the registry (``trains_on``: "maps").

The batch-norm layers of the top are trained as in fine-tuning; those of the frozen stages keep
their statistics (the maps are computed in eval mode).
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..errors import BadOption
from ..models.backbones import Backbone
from ..models.exchnet import ExchNet
from ..models.heads import HashHead, HashingModel
from ..models.stages import check_top, split_stages, stage_names, stem_children
from ..retrieval.codes import binarize
from .asymmetric import train_asymmetric
from .frozen import fold, train_head
from .stage_maps import cached_maps

# the hash layer is first trained alone as in frozen mode (PROBE, PROBE_ITERATIONS per iteration of the
# top), then with the top at a lower rate
TOP_DEFAULTS = {"iterations": 20, "epochs": 1, "samples": 2000, "optimizer": "adamw", "lr": 1e-4, "init_codes": "network"}
PROBE = {"epochs": 2, "samples": 4000, "optimizer": "adamw", "lr": 3e-4}
PROBE_ITERATIONS = 3


def check_top_system(system, backbone: str, k, choices=None) -> None:
    """A clear error unless ``system`` (of the registry) can train the ``k`` top stages of ``backbone``;
    ``choices``: the systems that can, named in the error."""
    if "maps" not in system.trains_on:
        why = ("SREM erases regions of the input pixels, and the cache holds the frozen stages' maps, not pixels"
               if "srem" in system.terms else f"{system.name} does not train on the maps of the frozen stages")
        raise BadOption("--train-top trains on cached maps" + (f": --method must be one of {list(choices)}" if choices else "")
                        + f", got {system.name!r} ({why})")
    check_top(backbone, k)
    if issubclass(system.network, ExchNet) and backbone == "efficientnet_lite0":
        raise BadOption(f"--method {system.name} is built on ResNets and minires: train it with --backbone resnet18/34/50 "
                        "or minires")


class StandardisedHead(nn.Module):
    """u = head((f - mu) / sigma), mu and sigma fixed: the hash layer of frozen mode, trained further
    with the top, and folded into a plain hash layer at the end (``frozen.fold``)."""

    def __init__(self, head, mu: torch.Tensor, sigma: torch.Tensor):
        super().__init__()
        self.head, self.bits = head, head.bits
        self.register_buffer("mu", mu.clone())
        self.register_buffer("sigma", sigma.clone())

    def forward(self, f):
        return self.head((f - self.mu) / self.sigma)


def _replaced(model, name: str, module):
    """A shallow copy of ``model`` whose submodule ``name`` is ``module``; every other module,
    and so every weight, is shared with ``model``."""
    top = copy.copy(model)
    top._modules = {**model._modules, name: module}
    return top


def _frozen_norms(top):
    """``top`` whose batch-norm layers stay in eval mode when it trains: they keep the statistics
    the cached maps were computed with, so training and encoding see the same network."""
    def train(mode: bool = True):
        nn.Module.train(top, mode)
        for m in top.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return top

    top.train = train
    return top


def top_network(model, backbone, k: int):
    """``model`` (a HashingModel or ExchNet on ``backbone``) without its frozen bottom stages: it
    takes the frozen stages' maps and shares every trained module with ``model``."""
    _, top = split_stages(backbone, k)
    if hasattr(model, "stem") and hasattr(model, "local"):  # ExchNet: its stem is the backbone's children but the last
        return _frozen_norms(_replaced(model, "stem", model.stem[stem_children(backbone, k):]))
    return _frozen_norms(_replaced(model, "backbone", Backbone(top, backbone.out_channels, backbone.name)))


def probe(top, maps, cfg, progress: bool = True, train: bool = True) -> StandardisedHead:
    """The linear probe: the hash layer trained alone on the standardised pooled features of the top
    as it starts (frozen mode's training, ``frozen.train_head``), before the top is trained too;
    ``train=False``: only the standardisation (a resumed run reads its hash layer back)."""
    feats = {s: (maps.apply(top, s, lambda x: top.backbone(x)[1]), maps.labels[s]) for s in ("train", "val")
             if s in maps.labels}
    mu = feats["train"][0].mean(0)
    sigma = feats["train"][0].std(0).clamp_min(1e-2 * float(feats["train"][0].std(0).mean()))  # no dead channel blows up
    if not train:
        return StandardisedHead(HashHead(len(mu), top.bits), mu, sigma)
    z = {s: ((f - mu) / sigma, y) for s, (f, y) in feats.items()}
    probe_cfg = replace(cfg, init_codes="random", iterations=max(1, round(PROBE_ITERATIONS * cfg.iterations)), **PROBE)
    head, _, _ = train_head(z, probe_cfg, progress=progress)
    return StandardisedHead(head, mu, sigma)


def train_top(system, backbone, n_classes: int, splits: dict, cfg, k: int, run_dir=None, device="cpu",
              workers: int | None = None, progress: bool = True):
    """Train the ``k`` top stages of ``backbone`` and the hash layer of ``system``'s network on
    ``splits`` ({"train": (data, labels), "val": ..., "test": ...}, as ``data.course_splits``
    gives them); the maps are cached in ``run_dir`` and the loop checkpoints to
    ``run_dir/checkpoints`` (resumable). A HashingModel's hash layer is probed first (``probe``).

    Returns (the whole network in eval mode on the CPU, V, history, binary codes of the test maps
    or None)."""
    check_top_system(system, backbone.name, k)
    model = system.build(backbone, sum(cfg.segments), n_classes)
    bottom, _ = split_stages(backbone, k)
    frozen = len(stage_names(backbone.name)) - k
    maps = cached_maps(bottom, backbone, splits, frozen, run_dir, device, workers, progress)
    top = top_network(model, backbone, k).to(device)
    checkpoints = None if run_dir is None else Path(run_dir) / "checkpoints"
    if isinstance(model, HashingModel):
        resumed = checkpoints is not None and (checkpoints / "asymmetric.pt").exists()
        top._modules["head"] = probe(top, maps, cfg, progress, train=not resumed).to(device)
    val = (maps.tensor("val"), maps.labels["val"]) if "val" in splits else None
    V, hist = train_asymmetric(top, maps.views("train"), maps.labels["train"], cfg, checkpoint_dir=checkpoints,
                               val=val, progress=progress)
    codes = binarize(maps.apply(top, "test").numpy()) if "test" in splits else None
    if isinstance(model, HashingModel):
        model.head = fold(top.head.head, top.head.mu.cpu(), top.head.sigma.cpu())
    return model.cpu().eval(), V, hist, codes


__all__ = ["PROBE", "PROBE_ITERATIONS", "StandardisedHead", "TOP_DEFAULTS", "check_top_system", "probe", "top_network",
           "train_top"]
