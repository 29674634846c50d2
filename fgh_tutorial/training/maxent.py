"""Stage two of GAN-regularised hashing: the hashing network learns from real images with a
supervised loss and from the GAN's fake images (``training/gan.py``) with a maximum-entropy loss
(abstract in ``deep_hashing_abstracts.txt``, second entry).

Each bit of a relaxed code u in (-1, 1)^c is read as a coin, P(b_k = +1) = p_k = (1 + u_k) / 2, with
entropy H(p) = -p log p - (1 - p) log(1 - p), at most log 2 (a fair coin). On a batch of fake images:

    H_bits = (1 / (B c)) sum_i sum_k H(p_ik)                  mean bit entropy of the fake codes
    L_ME   = log 2 - H_bits  >= 0                             zero when every bit is a fair coin;
                                                              large for confident (low-entropy) codes
    L      = L_sup(real batch) + lambda L_ME(fake batch)

with L_sup the course's supervised loss, central similarity per code segment (``losses.py``). A fake
image belongs to no class, so the network must not be sure of any of its bits; this penalises the
over-confident, over-fitted codes that memorise the training set, the regulariser of the abstract.

Readings where the abstract is open: the entropy is the per-bit Bernoulli entropy above (the abstract
says only "maximum-entropy loss ... penalizing low-entropy output hash codes"); the supervised loss
is central similarity (the abstract names none); fake images are a fraction ``fake_ratio`` of each
batch, passed through the network together with the real ones (one forward pass, shared batch
norm); the generator is fixed in stage two. Database codes are the network's codes of the database.
"""
from __future__ import annotations

import math

import torch

from ..errors import BadOption
from ..data import stack
from .config import TrainConfig
from .gan import GANConfig, load_or_train_gan
from .losses import central_similarity_loss, hash_centres
from .symmetric import train_symmetric

FAKE_RATIO = 0.5  # fake images per real image in a batch
ENTROPY_WEIGHT = 1.0  # lambda


def bit_entropy(u: torch.Tensor) -> torch.Tensor:
    """H_bits: the mean Bernoulli entropy (nats) of the bits of relaxed codes u (B x c)."""
    p = ((1 + u) / 2).clamp(1e-7, 1 - 1e-7)
    return -(p * p.log() + (1 - p) * (1 - p).log()).mean()


def max_entropy_loss(u: torch.Tensor) -> torch.Tensor:
    """L_ME = log 2 - H_bits(u): 0 for codes whose bits are all fair coins (u = 0)."""
    return math.log(2) - bit_entropy(u)


def train_maxent(model, images, labels, cfg: TrainConfig, generator=None, gan: GANConfig | None = None,
                 fake_ratio: float = FAKE_RATIO, weight: float = ENTROPY_WEIGHT, progress: bool = True, **kwargs):
    """Stage two on ``model`` (any network returning relaxed codes); the generator is ``generator``
    or stage one's, loaded from the cache or trained on ``images`` (``gan``, default
    ``GANConfig.for_image_size`` with the config's seed). Returns (database codes +-1, history);
    ``kwargs`` go to ``train_symmetric``."""
    if not 0 <= fake_ratio <= 4:
        raise BadOption(f"fake_ratio must be in [0, 4], got {fake_ratio}")
    device = next(model.parameters()).device
    if generator is None:
        gan = gan or GANConfig.for_image_size(stack(images, [0]).shape[-1], cfg.seed)
        generator, _ = load_or_train_gan(images, gan, device, progress)
    generator = generator.to(device).eval()
    labels = torch.as_tensor(labels)
    n_classes = int(labels.max()) + 1
    centres = [hash_centres(n_classes, b, cfg.seed + i).to(device) for i, b in enumerate(cfg.segments)]
    segments = list(cfg.segments)

    def batch_loss(model, x, y, g):
        n_fake = int(round(fake_ratio * len(x)))
        fake = generator.sample(n_fake, g).to(x.dtype) if n_fake else x[:0]
        u = model(torch.cat([x, fake]))
        real, fake_u = u[:len(x)], u[len(x):]
        sup = sum(central_similarity_loss(p, y, c) for p, c in zip(real.split(segments, 1), centres)) / len(segments)
        return sup + weight * max_entropy_loss(fake_u) if n_fake else sup

    return train_symmetric(model, images, labels, cfg, batch_loss, name="maxent", progress=progress, **kwargs)
