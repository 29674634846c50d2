"""Networks: backbones (feature map + pooled feature), the hash layer, ExchNet, DNNH, two-pyramid
hashing, the DCGAN of GAN-regularised hashing (``models.gan``), and the encoder
that turns images into codes. Imports ``data`` and ``retrieval.codes`` only.

``build_network(arch, backbone, bits, n_classes)`` makes the network a system names (``systems.py``).
"""
from ..errors import BadOption
from .backbones import NAMES as BACKBONES, Backbone, build_backbone
from .dnnh import DNNH
from .encode import encode, pooled_features, relaxed_codes
from .exchnet import ExchNet
from .heads import HashHead, HashingModel
from .pyramid import TwoPyramid

NETWORKS = {
    "hashing": lambda backbone, bits, n_classes: HashingModel(backbone, bits),
    "exchnet": lambda backbone, bits, n_classes: ExchNet(backbone, bits, n_classes),
    "dnnh": lambda backbone, bits, n_classes: DNNH(backbone, bits, n_classes),
    "pyramid": lambda backbone, bits, n_classes: TwoPyramid(backbone, bits, n_classes),
}


def build_network(arch: str, backbone, bits: int, n_classes: int):
    """The network ``arch`` (a key of ``NETWORKS``) on ``backbone`` with a ``bits``-bit head."""
    if arch not in NETWORKS:
        raise BadOption(f"arch must be one of {sorted(NETWORKS)}, got {arch!r}")
    return NETWORKS[arch](backbone, bits, n_classes)


__all__ = ["BACKBONES", "Backbone", "DNNH", "ExchNet", "HashHead", "HashingModel", "NETWORKS", "build_backbone",
           "TwoPyramid", "build_network", "encode", "pooled_features", "relaxed_codes"]
