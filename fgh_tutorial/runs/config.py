"""The settings of a run, typed: ``RunConfig``, a frozen dataclass whose settings are the fields
that ``options.SETTINGS`` declares (``bits`` is kept as ``lengths``, one code length per head
segment), plus what a run derives on its way, each an explicit field:

    solver            the trainer's AsymmetricConfig as a dict (the system's, the schedule's and the
                      options' fields together), stored as "schedule" in config.json
    n_classes         the number of classes of the data
    data_fingerprint  the fingerprint of the data (data/fingerprint.py)

``plan`` fills in the iterations, epochs and samples the schedule decides and the solver;
``to_json`` and ``from_json`` write and read config.json. ``from_json`` reads the config.json of
any earlier version: keys it lacks keep their defaults, keys it does not know are ignored, and
nothing in it is checked again (a run's weights file may have moved since it was trained).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, make_dataclass, replace

from ..errors import BadFile, BadOption, BadOptionType
from ..models.backbones import RESNETS, build_backbone
from ..systems import trainable_on
from ..training.asymmetric import AsymmetricConfig
from ..training.schedules import paper_milestones, paper_schedule
from ..training.top_stages import TOP_DEFAULTS, check_top_system
from .options import SETTINGS

# frozen mode: many short iterations over the whole database are cheap on cached features
FROZEN_DEFAULTS = {"iterations": 60, "epochs": 2, "samples": 4000, "optimizer": "adamw", "lr": 3e-4}
_Settings = make_dataclass("_Settings", [(o.attr, o.kind if o.default is not None else o.kind | None, o.default)
                                         for o in SETTINGS], frozen=True)


@dataclass(frozen=True)
class RunConfig(_Settings):
    """A run's settings (the fields of ``options.SETTINGS``) and what it derived from them."""
    solver: dict | None = None
    n_classes: int | None = None
    data_fingerprint: dict | None = None

    @property
    def bits(self) -> int:
        """The width of the run's codes: all code lengths together."""
        return sum(self.lengths)

    @classmethod
    def checked(cls, **settings) -> RunConfig:
        """The settings given (by name, as ``train`` takes them), each checked; the others keep their defaults."""
        unknown = sorted(set(settings) - {o.name for o in SETTINGS})
        if unknown:
            raise BadOptionType(f"unknown run options: {', '.join(unknown)}")
        return cls(**{o.attr: o.checked(settings.get(o.name, o.default)) for o in SETTINGS})

    def to_json(self) -> dict:
        """config.json: the settings written "always", the code lengths of a run of several, the
        others when given (not None or False), the solver (where the schedule option is when it
        was given, else after the options), then what the run derived from its data."""
        out = {}
        for o in (o for o in SETTINGS if o.written == "always"):
            value = getattr(self, o.attr)
            out[o.name] = self.bits if o.name == "bits" else value
        if len(self.lengths) > 1:
            out["lengths"] = list(self.lengths)
        for o in (o for o in SETTINGS if o.written != "always"):
            value = getattr(self, o.attr)
            if value is not None and value is not False:
                out[o.name] = self.solver if o.name == "schedule" and self.solver is not None else value
        if self.solver is not None:
            out.setdefault("schedule", self.solver)
        out.update({k: getattr(self, k) for k in ("n_classes", "data_fingerprint") if getattr(self, k) is not None})
        return out

    @classmethod
    def from_json(cls, record: dict) -> RunConfig:
        """The RunConfig of a config.json (or of a manifest's "config") written by any version."""
        missing = [k for k in ("dataset", "bits", "method") if k not in record]
        if missing:
            raise BadFile(f"the run's config.json lacks {', '.join(missing)}: it was not written by 'train'")
        fields = {o.attr: record[o.name] for o in SETTINGS if o.name in record and o.name not in ("bits", "schedule")}
        solver = record.get("schedule")
        if not isinstance(solver, dict):  # never written so far: a choice alone
            fields["schedule"], solver = solver, None
        elif solver.get("schedule") == "paper":
            fields["schedule"] = "paper"
        return cls(**fields, lengths=tuple(record.get("lengths") or (int(record["bits"]),)), solver=solver,
                   n_classes=record.get("n_classes"), data_fingerprint=record.get("data_fingerprint"))


def columns(lengths, bits: int) -> slice:
    """The code columns of the ``bits``-bit segment."""
    lengths = tuple(lengths)
    if bits not in lengths:
        raise BadOption(f"this run has {', '.join(map(str, lengths))}-bit codes, not {bits}")
    start = sum(lengths[:lengths.index(bits)])
    return slice(start, start + bits)


def per_length(metric, q_codes, db_codes, q_y, db_y, lengths) -> dict:
    """``metric(q, db, q_y, db_y)`` of a run: as it is for one code length, else per length."""
    lengths = tuple(lengths)
    if len(lengths) == 1:
        return metric(q_codes, db_codes, q_y, db_y)
    return {"lengths": list(lengths), "per_length": {
        str(b): metric(q_codes[:, columns(lengths, b)], db_codes[:, columns(lengths, b)], q_y, db_y) for b in lengths}}


def run_profile(profile, config: RunConfig):
    """The profile with the run's backbone, image size, learning rate and batch size."""
    over = {k: getattr(config, k) for k in ("image_size", "lr", "batch_size") if getattr(config, k) is not None}
    if config.backbone:
        over.update(backbone=config.backbone, pretrained=config.backbone in (*RESNETS, "efficientnet_lite0"))
    return replace(profile, **over)


def run_backbone(config: RunConfig, profile, load: bool = False):
    """The run's backbone: pretrained or from --weights to train; bare to load a trained run into."""
    if load:
        return build_backbone(profile.backbone)
    return build_backbone(profile.backbone, pretrained=profile.pretrained and not config.weights, weights=config.weights)


def check_frozen(system, config: RunConfig) -> None:
    if config.freeze_backbone and "features" not in system.trains_on:
        raise BadOption(f"--freeze-backbone trains a hash layer on pooled features: --method must be one of "
                        f"{trainable_on('features')}, got {system.name!r}")


def check_train_top(system, config: RunConfig, profile) -> None:
    """--train-top K: a count of top stages the backbone has, a system that trains on cached maps."""
    if config.train_top is None:
        return
    if config.freeze_backbone:
        raise ValueError("--train-top and --freeze-backbone exclude each other: --freeze-backbone trains the hash "
                         "layer alone, --train-top K the K top stages too")
    check_top_system(system, profile.backbone, config.train_top, trainable_on("maps"))


def plan(system, config: RunConfig, profile) -> tuple[RunConfig, AsymmetricConfig]:
    """The run's AsymmetricConfig, and ``config`` with it as ``solver`` and with the epochs and
    samples filled in when left out (and the iterations where the schedule or frozen mode decides them)."""
    lengths, fields = config.lengths, {}
    iterations, epochs, samples = config.iterations, config.epochs, config.samples
    if config.schedule == "paper":
        paper = paper_schedule(lengths)
        iterations, epochs = iterations or paper.iterations, epochs or paper.epochs
        fields.update(schedule="paper", optimizer="sgd", momentum=0.9, weight_decay=1e-5, lr=1e-3,
                      milestones=paper_milestones(lengths, iterations))
    elif config.freeze_backbone or config.train_top:
        defaults = FROZEN_DEFAULTS if config.freeze_backbone else TOP_DEFAULTS
        iterations, epochs = iterations or defaults["iterations"], epochs or defaults["epochs"]
        samples = samples or defaults["samples"]
        fields.update({k: v for k, v in defaults.items() if k not in ("iterations", "epochs", "samples")})
    epochs, samples = epochs or 1, samples or 2000
    for key in ("lr", "batch_size", "workers", "positives", "compile"):
        if getattr(config, key) is not None and getattr(config, key) is not False:
            fields[key] = getattr(config, key)
    cfg = AsymmetricConfig(segments=lengths, iterations=iterations or max(1, profile.epochs // 3), epochs=epochs,
                           samples=samples, seed=profile.seed)
    cfg = replace(system.config(cfg), **fields)
    return replace(config, iterations=iterations, epochs=epochs, samples=samples, solver=asdict(cfg)), cfg


__all__ = ["FROZEN_DEFAULTS", "RunConfig", "check_frozen", "check_train_top", "columns", "per_length", "plan",
           "run_backbone", "run_profile"]
