"""Stage one of GAN-regularised hashing: a DCGAN learns to draw fake training images from the
training images alone (no extra data), and is kept on disk like the course model (``cache.py``).

Losses (Goodfellow et al. 2014, the non-saturating generator loss), with D(x) a logit:

    L_D = -(1/B) sum_i [ log sigma(D(x_i)) + log(1 - sigma(D(G(z_i)))) ]
    L_G = -(1/B) sum_i log sigma(D(G(z_i)))

optimised alternately with Adam (lr 2e-4, beta_1 = 0.5), as DCGAN recommends. Training is
deterministic under ``GANConfig.seed`` with fixed CPU threads; the cache key is the config plus a
fingerprint of the images (their number, size and the pixels of a few of them), so another dataset
never loads this dataset's generator.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..errors import BadOption
from ..data import stack
from ..models.gan import Discriminator, Generator
from .cache import cache_dir
from .checkpoints import load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class GANConfig:
    resolution: int | None = None  # the GAN's image size, a power of two (None: see gan_resolution)
    z_dim: int = 64
    width: int = 16  # channels of the generator's last and the discriminator's first layer
    epochs: int = 3
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    seed: int = 0

    @classmethod
    def for_image_size(cls, image_size: int, seed: int = 0) -> "GANConfig":
        """The default of stage two: small and short for small images (the CPU profile's 64 px: a
        32 px GAN of width 8, 3 epochs in batches of 32: 10 s on 2 cores), DCGAN's width and a
        longer run for large ones (GPU profile)."""
        if image_size >= 128:
            return cls(width=64, epochs=25, seed=seed)
        return cls(width=8, batch_size=32, seed=seed)


@dataclass
class GANHistory:
    d_loss: list = field(default_factory=list)  # mean per epoch
    g_loss: list = field(default_factory=list)
    seconds: float = 0.0  # training time, as measured when it was trained (kept in the cache)


def gan_resolution(image_size: int, cfg: GANConfig) -> int:
    """``cfg.resolution``, or by default half the image size rounded down to a power of two, at
    most 64 and at least 8 (32 px for the CPU profile's 64 px images: a quarter of the cost of
    64 px, and the fakes only need to look like birds to the hashing network, not to a person)."""
    if cfg.resolution is not None:
        return cfg.resolution
    return max(8, min(64, 1 << ((image_size // 2).bit_length() - 1)))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D: real images scored 1, fakes 0 (binary cross-entropy on logits)."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """L_G (non-saturating): fakes should be scored 1."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def train_dcgan(images, cfg: GANConfig = GANConfig(), device="cpu", progress: bool = True):
    """Train a DCGAN on ``images`` (a tensor N x 3 x H x W or a Dataset of (x, y)); returns
    (generator, discriminator, history). The generator draws images of the input's size."""
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    size = stack(images, [0]).shape[-1]
    resolution = gan_resolution(size, cfg)
    G = Generator(resolution, cfg.z_dim, cfg.width, image_size=size).to(device)
    D = Discriminator(resolution, cfg.width).to(device)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
    hist, start, n = GANHistory(), time.perf_counter(), len(images)
    if n < 2:
        raise BadOption(f"a GAN needs at least 2 training images, got {n}")
    batch = min(cfg.batch_size, n)
    for _ in tqdm(range(cfg.epochs), desc="DCGAN epochs", disable=not progress):
        order, d_sum, g_sum, steps = torch.randperm(n, generator=g), 0.0, 0.0, 0
        for s in range(0, n - batch + 1, batch):
            real = stack(images, order[s:s + batch]).to(device)
            z = torch.randn(len(real), cfg.z_dim, generator=g).to(device)
            fake = G(z)
            d_loss = discriminator_loss(D(real), D(fake.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = generator_loss(D(fake))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            d_sum, g_sum, steps = d_sum + d_loss.item(), g_sum + g_loss.item(), steps + 1
        hist.d_loss.append(d_sum / max(steps, 1))
        hist.g_loss.append(g_sum / max(steps, 1))
    hist.seconds = time.perf_counter() - start
    return G.eval(), D.eval(), hist


def fingerprint(images) -> str:
    """A short digest of a training set: its size, image shape and the pixels of 8 spread images."""
    n = len(images)
    picks = sorted({int(i) for i in torch.linspace(0, n - 1, 8)})
    sample = stack(images, picks).float().contiguous()
    h = hashlib.sha1(f"{n}-{tuple(sample.shape[1:])}".encode())
    h.update(sample.numpy().round(4).tobytes())
    return h.hexdigest()[:10]


def gan_checkpoint_path(images, cfg: GANConfig = GANConfig()):
    key = hashlib.sha1(json.dumps({**asdict(cfg), "data": fingerprint(images), "version": 1},
                                  sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir() / f"dcgan-{key}.pt"


def load_or_train_gan(images, cfg: GANConfig = GANConfig(), device="cpu", progress: bool = True, retrain: bool = False):
    """The generator of ``images`` under ``cfg``: loaded from the cache when present, else trained
    (deterministically) and cached atomically. Returns (generator in eval mode, history)."""
    path = gan_checkpoint_path(images, cfg)
    if path.exists() and not retrain:
        saved = load_checkpoint(path, map_location=device)
        G = Generator(int(saved["resolution"]), cfg.z_dim, cfg.width, image_size=int(saved["image_size"])).to(device)
        G.load_state_dict(saved["generator"])
        return G.eval(), GANHistory(**saved["history"])
    G, _, hist = train_dcgan(images, cfg, device, progress)
    save_checkpoint(path, {"generator": G.state_dict(), "image_size": G.image_size, "resolution": G.resolution,
                           "history": asdict(hist),
                           "config": asdict(cfg)})
    return G, hist
