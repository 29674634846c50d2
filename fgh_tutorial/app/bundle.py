"""A bundle of trained systems on one dataset, with the labels of its database and queries:
what the retrieval explorer opens. One ships with the package (``explorer_bundle.pt`` beside this
module, read through importlib.resources, so an installed package, not only a clone, opens the
explorer); notebook 07 and ``build_bundle`` train it again, ``bundle_from_runs`` opens run folders
of the command line.

A bundle file holds float16 weights and each system's database codes as packed words (the layout
of ``retrieval/codes.py``, stored as int64 tensors), and is read with ``weights_only=True``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..data import SynthBirds, class_name, course_splits, default_transform, denormalize, normalize_batch, open_image, stack
from ..errors import BadData, BadFile, BadOption, MissingFile
from ..files import read_json
from ..models.backbones import build_backbone
from ..models.encode import encode
from ..retrieval.codes import binarize, check_words, pack_codes, unpack_codes
from ..retrieval.metrics import mean_average_precision
from ..systems import COURSE_SYSTEMS, AsymmetricConfig, get_system, train_systems
from ..training.cache import load_or_train
from ..training.checkpoints import load_checkpoint, save_checkpoint
from ..training.profiles import Profile, get_profile, seed_everything
from .explorer import TrainedSystem

BUNDLE_FORMAT = 2  # 1: codes as big-endian packbits; 2: packed uint64 words (the code contract)


def default_bundle_path() -> Path:
    """The bundle shipped inside the package."""
    return Path(str(resources.files("fgh_tutorial.app").joinpath("explorer_bundle.pt")))


# ---------------------------------------------------------------- a bundle of systems
@dataclass
class Bundle:
    """Systems trained on one dataset (``profile``), with the labels of its database and queries."""

    profile: Profile
    systems: dict
    db_labels: np.ndarray
    query_labels: np.ndarray

    @property
    def lengths(self) -> tuple:
        return tuple(sorted({b for s in self.systems.values() for b in s.lengths}))

    @cached_property
    def _splits(self):
        return course_splits(self.profile)

    def _synthetic(self, split):
        p = self.profile
        per_class = {"train": p.per_class, "test": p.per_class_query}[split]
        return SynthBirds(split, per_class, p.image_size, p.seed)

    def images(self, split: str, ids) -> np.ndarray:
        """uint8 images (len(ids), H, W, 3) of the ``"train"`` (database) or ``"test"`` (query) split."""
        if self.profile.dataset == "synthetic":
            data = self._synthetic(split)
            return np.stack([data.render(int(i))[0] for i in ids])
        return denormalize(stack(self._splits[split][0], list(ids)))

    def tensors(self, split: str, ids) -> torch.Tensor:
        """The same images, normalised for the network (len(ids), 3, H, W)."""
        if self.profile.dataset == "synthetic":
            return normalize_batch(self.images(split, ids))
        return stack(self._splits[split][0], list(ids))

    def class_names(self) -> list:
        """A readable name per class id: SynthBirds' part names, a real dataset's class folders."""
        n = int(max(np.max(self.db_labels), np.max(self.query_labels))) + 1
        if self.profile.dataset == "synthetic":
            return [class_name(c) for c in range(n)]
        data = self._splits["test"][0]
        names = list(getattr(getattr(data, "dataset", data), "classes", []))
        return names + [f"class {c}" for c in range(len(names), n)]

    def query(self, i: int) -> torch.Tensor:
        if not 0 <= i < len(self.query_labels):
            raise IndexError(f"query {i} out of range: the query split has {len(self.query_labels)} images")
        return self.tensors("test", [i])

    def decode_upload(self, data: bytes, name: str = "upload") -> tuple[np.ndarray, torch.Tensor]:
        """An uploaded image file: (uint8 image as the network sees it, normalised 1 x 3 x H x W).
        Decoded by ``data.images.open_image``: a file it cannot read raises a BadImageError (a ValueError)."""
        image = open_image(bytes(data), repr(name))
        x = default_transform(self.profile.image_size)(image)[None]
        return denormalize(x)[0], x

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        systems = {name: {"system": s.system, "lengths": list(s.lengths), "map": {str(b): v for b, v in s.map.items()},
                          "state": _half(s.model.state_dict()),
                          "codes": torch.from_numpy(pack_codes(s.codes).view(np.int64))}
                   for name, s in self.systems.items()}
        payload = {"format": BUNDLE_FORMAT, "profile": {**asdict(self.profile), "data_root": None},
                   "db_labels": torch.as_tensor(self.db_labels), "query_labels": torch.as_tensor(self.query_labels),
                   "systems": systems}
        return save_checkpoint(path, payload)


def _half(state: dict) -> dict:
    """Float weights stored as float16 (half the file); the bundle's metrics are measured with them."""
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _float(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def _rounded(model):
    """``model`` with its weights rounded through float16, as a saved bundle restores them."""
    model.load_state_dict(_float(_half(model.state_dict())))
    return model.eval()


def load_bundle(path=None, data_root: str | None = None) -> Bundle:
    """A saved bundle (default: the one shipped with the package). ``data_root``: the folder of a
    real dataset (not needed for SynthBirds, whose images are drawn on demand)."""
    path = Path(path) if path else default_bundle_path()
    if not path.exists():
        raise MissingFile(f"no explorer bundle at {path}: build one with "
                                "fgh_tutorial.app.bundle.build_bundle(profile).save(path)")
    payload = load_checkpoint(path)
    if not isinstance(payload, dict) or payload.get("format") not in (1, BUNDLE_FORMAT):
        raise BadFile(f"{path} is not an explorer bundle of format {BUNDLE_FORMAT}")
    profile = Profile(**{**payload["profile"], "device": "cpu", "data_root": data_root})
    n_classes = int(payload["db_labels"].max()) + 1
    systems = {}
    for name, s in payload["systems"].items():
        system = get_system(s.get("system", name))  # older bundles: named by the label
        model = system.build(build_backbone(profile.backbone), sum(s["lengths"]), n_classes)
        model.load_state_dict(_float(s["state"]))
        systems[name] = TrainedSystem(name, model.eval(), _codes(payload["format"], s["codes"], sum(s["lengths"]),
                                                                 f"{path}: the codes of {name}"),
                               tuple(s["lengths"]), system.name,
                               {int(b): v for b, v in s["map"].items()})
    return Bundle(profile, systems, payload["db_labels"].numpy(), payload["query_labels"].numpy())


def _codes(fmt: int, stored: torch.Tensor, bits: int, name: str) -> np.ndarray:
    if fmt == 1:
        return 2 * np.unpackbits(stored.numpy(), axis=1, count=bits).astype(np.int8) - 1
    try:  # the width and the padding bits of the stored words, against the system's code lengths
        return unpack_codes(check_words(stored.numpy().view(np.uint64), name, bits), bits)
    except BadOption as err:
        raise BadFile(str(err)) from None


def build_bundle(profile: Profile | None = None, names=tuple(get_system(n).label for n in COURSE_SYSTEMS), lengths=(12, 24, 32, 48),
                 iterations: int = 4, samples: int = 1500, progress: bool = True) -> Bundle:
    """Train the course's systems as notebook 05 does (from the notebook-01 backbone, the same
    seed and samples), round their weights to float16 and measure each one's mAP."""
    profile = profile or get_profile()
    seed_everything(profile.seed, profile.threads)
    splits = course_splits(profile, progress=progress)
    base, _ = load_or_train(profile, 48, splits, progress=progress)
    cfg = AsymmetricConfig(segments=tuple(lengths), iterations=iterations, epochs=1, samples=samples, seed=profile.seed)
    runs = train_systems(base.backbone, splits["train"], splits["val"], cfg, names, progress=progress)
    (q_x, q_y), db_y = splits["test"], splits["train"][1]
    systems = {}
    for name, (model, V, _) in runs.items():
        system = TrainedSystem(name, _rounded(model.cpu()), binarize(V), tuple(lengths), get_system(name).name)
        system.map = system_map(system, q_x, q_y, db_y)
        systems[name] = system
    return Bundle(replace(profile, device="cpu"), systems, np.asarray(db_y), np.asarray(q_y))


def system_map(system: TrainedSystem, query_images, query_labels, db_labels) -> dict:
    """Tie-aware mAP of the query split at each code length: network codes against V."""
    codes = encode(system.model, query_images)
    return {b: mean_average_precision(codes[:, system.columns(b)], system.codes[:, system.columns(b)],
                                      np.asarray(query_labels), np.asarray(db_labels)) for b in system.lengths}


def bundle_from_runs(*runs) -> Bundle:
    """A bundle over run folders of ``python -m fgh_tutorial train`` on the same data (one system
    per run, named after its folder), to explore one's own trained runs.

    Each run is read as ``evaluate`` reads it: its files checked against its manifest, its codes'
    width against its code lengths, and its data against the fingerprint recorded at training
    (a folder changed since then is refused: its images would not be the ones the codes belong
    to), with the images the run skipped (``--on-bad-image skip``) left out again. All runs must
    have been trained on the same data."""
    from ..data.fingerprint import compare
    from ..runs.folder import load_run, run_database, run_splits

    if not runs:
        raise BadOption("give at least one run folder")
    systems, first, labels, splits = {}, None, None, None
    for run in runs:
        config, model, prof = load_run(run)
        where = f"{prof.dataset} data at {prof.image_size} px" + (f" from {prof.data_root}" if prof.data_root else "")
        if first is not None:
            (run0, config0, prof0, where0) = first
            diffs = compare(config0.data_fingerprint or {}, config.data_fingerprint or {})[0]
            if (prof.dataset, prof.image_size, prof.data_root) != (prof0.dataset, prof0.image_size, prof0.data_root) \
                    or diffs:
                raise BadData(f"{run} was trained on {where}, {run0} on {where0}"
                              f"{' (' + '; '.join(diffs) + ')' if diffs else ''}: a bundle holds runs of the same data")
        run_split = run_splits(run, config, prof)  # refuses changed data; leaves out the skipped images
        codes, labels = run_database(run, config)
        if len(codes) != len(run_split["train"][1]):
            raise BadData(f"{run}: {len(codes)} database codes for the {len(run_split['train'][1])} database images of "
                          "its data: train the run again with --force")
        first, splits = first or (run, config, prof, where), splits or run_split
        name = Path(run).name
        if name in systems:
            raise BadOption(f"two runs are named {name!r}: give runs in folders of different names")
        metrics, lengths = Path(run) / "metrics.json", config.lengths
        scores = read_json(metrics) if metrics.exists() else {}
        scores = ({int(b): m["map"] for b, m in scores["per_length"].items()} if "per_length" in scores
                  else {lengths[0]: scores["map"]} if scores else {})
        systems[name] = TrainedSystem(name, model, codes, lengths, config.method, scores)
    bundle = Bundle(first[2], systems, labels, np.asarray(splits["test"][1]))
    bundle.__dict__["_splits"] = splits  # the splits the codes were checked against (cached_property's slot)
    return bundle


__all__ = ["Bundle", "build_bundle", "bundle_from_runs", "default_bundle_path", "load_bundle", "system_map"]
