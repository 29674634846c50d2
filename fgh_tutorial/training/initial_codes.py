"""Where the database codes V start.

    random    V_0 = sign(N(0, 1)), drawn from the run's generator (the course's runs);
    network   V_0 = the V-step (solver.py, Eq. 16-17) on the *untrained* network's relaxed codes U of
              m rows drawn from the run's generator, starting from V = 0.

The official ADSH code starts from V = 0: its first epochs then only pull u towards 0, and its
first V-step is, up to that shrinking, the ``network`` start. With random V_0 the first epochs
instead fit the network to codes that carry no class structure; on pretrained features with
many classes (196 car models) that start learned slowly, while V_0 from the network's codes,
whose class sums already follow the features, starts from class-coherent codes.
"""
from __future__ import annotations

import torch

from ..data import subset
from ..models.encode import relaxed_codes
from .solver import update_database_codes

INITS = ("random", "network")  # the config checks its init_codes against these


def initial_codes(model, images, labels: torch.Tensor, cfg, g: torch.Generator) -> torch.Tensor:
    """V_0 (n x bits, +-1 floats on the labels' device) as ``cfg.init_codes`` says."""
    n, bits = len(labels), model.bits
    if cfg.init_codes == "random":
        return torch.where(torch.randn(n, bits, generator=g) >= 0, 1.0, -1.0).to(labels.device)
    rows = torch.randperm(n, generator=g)[:min(cfg.samples, n)]
    U = relaxed_codes(model, subset(images, rows)).to(labels.device)
    V = torch.zeros(n, bits, device=labels.device)
    parts = [update_database_codes(Vk, Uk, rows.to(labels.device), labels, cfg.gamma, cfg.similarity)
             for Vk, Uk in zip(V.split(list(cfg.segments), 1), U.split(list(cfg.segments), 1))]
    return torch.cat(parts, 1)
