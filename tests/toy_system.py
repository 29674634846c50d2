"""A hashing system that is not part of the package: its network is this module, and registering
it is one entry (``register(SYSTEM)``); nothing else in the package is touched (tests/test_registry.py)."""
from torch import nn

from fgh_tutorial.models.heads import HashHead
from fgh_tutorial.models.stages import cam_layer
from fgh_tutorial.systems import System


class MaxPoolHash(nn.Module):
    """The backbone's feature map, global *max* pooling, the hash layer:  u = tanh(W max_hw F + b)."""

    def __init__(self, backbone: nn.Module, bits: int, n_classes: int | None = None):
        super().__init__()
        self.backbone = backbone
        self.head = HashHead(backbone.out_channels, bits)

    @property
    def bits(self) -> int:
        return self.head.bits

    def forward(self, x):
        fmap, _ = self.backbone(x)
        return self.head(fmap.amax((2, 3)))

    def cam_layer(self) -> nn.Module:
        return cam_layer(self.backbone)


SYSTEM = System("maxpool", "MaxPool", MaxPoolHash, "max-pooled feature map + hash layer, ADSH codes and ESRL",
                terms=("esrl",))
