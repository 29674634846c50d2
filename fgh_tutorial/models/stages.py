"""A backbone as a sequence of *stages*: the blocks that ``--train-top K`` splits into frozen
bottom stages (run once, their output maps cached) and the K top stages trained with the hash layer.

    resnet18/34/50       stem (conv1, bn1, relu, maxpool), layer1, layer2, layer3, layer4      5 stages
    efficientnet_lite0   stem (conv, bn, relu6), the 7 groups of MBConv blocks of EfficientNet-B0
                         (1, 2, 2, 3, 3, 4, 1 blocks: 16, 24, 40, 80, 112, 192, 320 channels),
                         head (1 x 1 conv to 1280 channels, bn, relu6)                         9 stages
    minires              stem (conv, bn, relu), block 1, block 2, block 3                       4 stages
    nin                  none (DNNH's trunk, trained from scratch with its system as a whole)

The stem always stays frozen, so K runs from 1 to len(stages) - 1. Stages share their modules (and
weights) with the backbone: ``nn.Sequential(*backbone_stages(b))`` computes ``b.features``, and
training a stage trains the backbone, whose state dict keeps its keys.
"""
from __future__ import annotations

from torch import nn

from .backbones import RESNETS

# EfficientNet-B0's block groups (the lite variant keeps them): blocks per group
LITE_GROUPS = (1, 2, 2, 3, 3, 4, 1)
STAGES = {**{name: ("stem", "layer1", "layer2", "layer3", "layer4") for name in RESNETS},
          "efficientnet_lite0": ("stem", *(f"blocks{i}" for i in range(1, 8)), "head"),
          "minires": ("stem", "block1", "block2", "block3")}


class _LiteStem(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.conv, self.bn, self.act = net._conv_stem, net._bn0, net._swish

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class _LiteBlocks(nn.Module):
    """Blocks ``start:stop`` of an EfficientNet, each with the drop-connect rate it has in the
    whole net (rate * index / number of blocks, as ``extract_features`` gives it)."""

    def __init__(self, net, start: int, stop: int):
        super().__init__()
        self.blocks = nn.ModuleList(net._blocks[start:stop])
        rate, n = net._global_params.drop_connect_rate or 0.0, len(net._blocks)
        self.rates = [rate * i / n for i in range(start, stop)]

    def forward(self, x):
        for block, rate in zip(self.blocks, self.rates):
            x = block(x, drop_connect_rate=rate or None)
        return x


class _LiteHead(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.conv, self.bn, self.act = net._conv_head, net._bn1, net._swish

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def _lite_stages(net) -> list:
    if len(net._blocks) != sum(LITE_GROUPS):
        raise ValueError(f"efficientnet_lite0 should have {sum(LITE_GROUPS)} blocks, this one has {len(net._blocks)}")
    stages, start = [("stem", _LiteStem(net))], 0
    for i, count in enumerate(LITE_GROUPS, 1):
        stages.append((f"blocks{i}", _LiteBlocks(net, start, start + count)))
        start += count
    return stages + [("head", _LiteHead(net))]


def stage_names(name: str) -> tuple:
    """The stages of the backbone ``name``, bottom first; a clear error for one without stages."""
    if name not in STAGES:
        raise ValueError(f"--train-top: the backbone {name} has no stages to split (stages are defined for "
                         f"{', '.join(STAGES)}); choose one of those, or train without --train-top")
    return STAGES[name]


def check_top(name: str, k) -> int:
    """The number of stages of the backbone ``name``, after checking that ``k`` top stages can be trained."""
    names = stage_names(name)
    n = len(names)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= n - 1:
        raise ValueError(f"--train-top must be 1 to {n - 1} for {name} (its {n} stages: {', '.join(names)}; "
                         f"the stem stays frozen), got {k!r}")
    return n


def backbone_stages(backbone) -> list[tuple[str, nn.Module]]:
    """[(name, module)] of a backbone's stages, bottom first (see the module's docstring)."""
    name = getattr(backbone, "name", type(backbone).__name__)
    names = stage_names(name)
    if name == "efficientnet_lite0":
        stages = _lite_stages(backbone.features.net)
    else:
        children = list(backbone.features.children())
        cut = 4 if name in RESNETS else 3
        stages = [("stem", nn.Sequential(*children[:cut]))] + list(zip(names[1:], children[cut:]))
    if tuple(s for s, _ in stages) != names:
        raise ValueError(f"this {name} has the stages {[s for s, _ in stages]}, not {list(names)}")
    return stages


def stem_children(backbone, k: int) -> int:
    """How many children of ``backbone.features`` the frozen stages hold when the ``k`` top ones
    are trained (ResNets and minires: ExchNet's stem is built from those children)."""
    n = check_top(backbone.name, k)
    if backbone.name == "efficientnet_lite0":
        raise ValueError("efficientnet_lite0 is not built from one child per stage")
    return (4 if backbone.name in RESNETS else 3) + (n - k - 1)


def cam_layer(backbone) -> nn.Module:
    """The module whose output is the backbone's last feature map, for Grad-CAM hooks (the
    efficientnet's head ends in a relu6 module it shares with every block: its batch norm)."""
    if getattr(backbone, "name", "") == "efficientnet_lite0":
        return backbone.features.net._bn1
    return backbone.features[-1]


def split_stages(backbone, k: int) -> tuple[nn.Sequential, nn.Sequential]:
    """(the frozen bottom stages, the ``k`` top stages) of ``backbone``, as two Sequentials."""
    n = check_top(backbone.name, k)
    modules = [m for _, m in backbone_stages(backbone)]
    return nn.Sequential(*modules[:n - k]), nn.Sequential(*modules[n - k:])


__all__ = ["LITE_GROUPS", "STAGES", "backbone_stages", "cam_layer", "check_top", "split_stages", "stage_names", "stem_children"]
