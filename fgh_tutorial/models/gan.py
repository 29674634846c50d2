"""A small DCGAN (Radford et al., ICLR 2016): the generator of fake training images for
GAN-regularised hashing (``training/gan.py`` trains it, ``training/maxent.py`` uses its samples).

    generator       z ~ N(0, I)^{z_dim} -> 4 x 4 -> 8 x 8 -> ... -> r x r x 3: transposed convolutions
                    (kernel 4, stride 2), batch norm and ReLU, tanh at the end: t in (-1, 1)
    discriminator   r x r x 3 -> ... -> 4 x 4 -> one logit: strided convolutions, batch norm and
                    leaky ReLU (slope 0.2), no pooling and no fully connected hidden layer

The GAN works at resolution r, a power of two (``training.gan.gan_resolution`` picks 32 px for
the CPU profile's 64 px images). The generator's output is mapped to
the space the hashing network reads: x = normalise((t + 1) / 2) with the ImageNet mean and standard
deviation of ``data.transforms``, resized to the network's image size when that is not r; the
discriminator reads real images resized to r and normalised the same way.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import BadOption
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD


def _levels(resolution: int) -> int:
    if resolution < 8 or resolution & (resolution - 1):
        raise BadOption(f"resolution must be a power of two >= 8, got {resolution}")
    return resolution.bit_length() - 3  # number of 2x up-samplings from 4 x 4


def _normalise(t: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN, device=t.device, dtype=t.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=t.device, dtype=t.dtype).view(1, 3, 1, 1)
    return ((t + 1) / 2 - mean) / std


def _init(module: nn.Module) -> None:
    """DCGAN's initialisation: convolutions N(0, 0.02), batch-norm scales N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class Generator(nn.Module):
    """z -> normalised fake images (B, 3, image_size, image_size)."""

    def __init__(self, resolution: int = 64, z_dim: int = 64, width: int = 32, image_size: int | None = None):
        super().__init__()
        n = _levels(resolution)
        self.resolution, self.z_dim, self.image_size = resolution, z_dim, image_size or resolution
        c = width * 2 ** (n - 1)
        layers = [nn.ConvTranspose2d(z_dim, c, 4, 1, 0, bias=False), nn.BatchNorm2d(c), nn.ReLU(True)]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(c, c // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ConvTranspose2d(c, 3, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = _normalise(self.net(z[:, :, None, None]))
        if self.image_size != self.resolution:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        return x

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n fake images (eval mode, no gradients); ``generator`` seeds z."""
        was = self.training
        self.eval()
        device = next(self.parameters()).device
        z = torch.randn(n, self.z_dim, generator=generator).to(device)
        out = self(z)
        self.train(was)
        return out


class Discriminator(nn.Module):
    """Normalised images (any size, resized to the resolution) -> one logit each (real vs fake)."""

    def __init__(self, resolution: int = 64, width: int = 32):
        super().__init__()
        n = _levels(resolution)
        self.resolution = resolution
        layers, c = [nn.Conv2d(3, width, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)], width
        for _ in range(n - 1):
            layers += [nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * c), nn.LeakyReLU(0.2, True)]
            c *= 2
        layers.append(nn.Conv2d(c, 1, 4, 1, 0, bias=False))
        self.net = nn.Sequential(*layers)
        _init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.resolution or x.shape[-2] != self.resolution:
            x = F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False,
                              antialias=True)
        return self.net(x).flatten()
