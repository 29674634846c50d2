"""The retrieval explorer's data side: trained systems, their learned database codes, and one
query's top-k with everything the explorer shows (distances, differing bits, AP, P@k, CAMs).

A *system* is a trained network (the query encoder) with the database codes V that the
solver learned, for several code lengths at once (one head segment each). A *bundle* holds
systems trained on one dataset, small enough to ship (``assets/explorer_bundle.pt``) so that
the explorer opens without training:

    bundle = load_bundle()                        # or build_bundle(profile): retrain it
    hit = retrieve(bundle.systems["FCAENet"], bundle.query(7), 48, bundle.db_labels, bundle.query_labels[7])
    hit.ids, hit.distances, hit.correct, hit.ap, hit.precision

For +-1 codes of c bits the Hamming distance is  d_H(q, v) = (c - q.v) / 2 ; the k nearest
come from the packed-code index, ties broken by the lower database index (the order shown).
"""
from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from .asymmetric import COURSE_METHODS, AsymmetricConfig, method_model, train_methods
from .backbones import build_backbone
from .cam import CodeSimilarity, compute_cams
from .data import SynthBirds, class_name, course_splits, default_transform, denormalize, normalize_batch, stack
from .encode import encode
from .heads import binarize
from .index import HammingIndex
from .metrics import average_precisions, mean_average_precision
from .profiles import Profile, get_profile, seed_everything
from .train import load_or_train

BUNDLE_FORMAT = 1
DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "assets" / "explorer_bundle.pt"


# ---------------------------------------------------------------- one system, one query
@dataclass
class System:
    """A trained network and its learned database codes ``codes`` (n x sum(lengths), +-1);
    code length ``lengths[i]`` is the i-th block of columns."""

    name: str
    model: torch.nn.Module
    codes: np.ndarray
    lengths: tuple
    arch: str = "hashing"
    map: dict = field(default_factory=dict)  # tie-aware mAP of the query split per code length
    _indexes: dict = field(default_factory=dict, repr=False)

    def columns(self, bits: int) -> slice:
        if bits not in self.lengths:
            raise ValueError(f"{self.name} has codes of {list(self.lengths)} bits, not {bits}")
        start = sum(self.lengths[:list(self.lengths).index(bits)])
        return slice(start, start + bits)

    def index(self, bits: int) -> HammingIndex:
        if bits not in self._indexes:
            self._indexes[bits] = HammingIndex(bits).add(self.codes[:, self.columns(bits)])
        return self._indexes[bits]

    def cam_layer(self):
        """The layer whose gradients the explorer's CAMs use: the backbone's last stage."""
        return self.model.last if self.arch == "exchnet" else self.model.backbone.features[-1]


@dataclass(frozen=True)
class Retrieval:
    """The k nearest database codes of one query at one code length."""

    bits: int
    query_code: np.ndarray  # (bits,) +-1
    ids: np.ndarray  # (k,) database indices, nearest first
    distances: np.ndarray  # (k,) Hamming distances
    codes: np.ndarray  # (k, bits) the results' codes
    labels: np.ndarray  # (k,) the results' classes
    query_label: int | None = None  # None: unknown (an uploaded image)
    ap: float | None = None  # tie-aware AP of the query over the whole database

    @property
    def correct(self) -> np.ndarray | None:
        return None if self.query_label is None else self.labels == self.query_label

    @property
    def precision(self) -> float | None:
        """Precision of the k results shown (ties in the order shown)."""
        return None if self.query_label is None else float(self.correct.mean())

    @property
    def differing(self) -> np.ndarray:
        """(k, bits): where each result's code differs from the query's; row sums = distances."""
        return self.codes != self.query_code


def retrieve(system: System, x: torch.Tensor, bits: int, db_labels, label: int | None = None, k: int = 10) -> Retrieval:
    """Encode the query image ``x`` (1 x 3 x H x W) and find its ``k`` nearest database codes."""
    cols = system.columns(bits)
    q = encode(system.model, x)[:, cols]
    distances, ids = system.index(bits).search(q, k)
    ids, db_labels = ids[0], np.asarray(db_labels)
    ap = None
    if label is not None:
        ap = float(average_precisions(q, system.codes[:, cols], np.array([label]), db_labels)[0])
    return Retrieval(bits, q[0], ids, distances[0], system.codes[ids, cols], db_labels[ids],
                     None if label is None else int(label), ap)


def explain(system: System, x_query: torch.Tensor, x_results: torch.Tensor, hit: Retrieval) -> np.ndarray:
    """Grad-CAMs (1 + k, H, W) of the query and its results, all with the target q.u: the
    query's code at this length against each image's relaxed code (the other bits count 0).
    Bright regions are what pulls an image's code towards the query's."""
    target = np.zeros(sum(system.lengths), np.float32)
    target[system.columns(hit.bits)] = hit.query_code
    images = torch.cat([x_query, x_results])
    return compute_cams(system.model, images, "gradcam", targets=[CodeSimilarity(target)] * len(images),
                        layer=system.cam_layer())


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
        """An uploaded image file: (uint8 image as the network sees it, normalised 1 x 3 x H x W)."""
        from PIL import Image, UnidentifiedImageError

        try:
            image = Image.open(io.BytesIO(bytes(data))).convert("RGB")
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"{name!r} is not an image file PIL can read ({err})") from err
        x = default_transform(self.profile.image_size)(image)[None]
        return denormalize(x)[0], x

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        systems = {name: {"arch": s.arch, "lengths": list(s.lengths), "map": {str(b): v for b, v in s.map.items()},
                          "state": _half(s.model.state_dict()),
                          "codes": torch.from_numpy(np.packbits(s.codes > 0, axis=1))}
                   for name, s in self.systems.items()}
        payload = {"format": BUNDLE_FORMAT, "profile": {**asdict(self.profile), "data_root": None},
                   "db_labels": torch.as_tensor(self.db_labels), "query_labels": torch.as_tensor(self.query_labels),
                   "systems": systems}
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(path)
        return path


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
    """A saved bundle (default: the course's ``assets/explorer_bundle.pt``). ``data_root``: the
    folder of a real dataset (not needed for SynthBirds, whose images are drawn on demand)."""
    path = Path(path) if path else DEFAULT_BUNDLE
    if not path.exists():
        raise FileNotFoundError(f"no explorer bundle at {path}: build one with "
                                "fgh_tutorial.explorer.build_bundle(profile).save(path)")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path} is not an explorer bundle of format {BUNDLE_FORMAT}")
    profile = Profile(**{**payload["profile"], "device": "cpu", "data_root": data_root})
    n_classes = int(payload["db_labels"].max()) + 1
    systems = {}
    for name, s in payload["systems"].items():
        model = method_model(s["arch"], build_backbone(profile.backbone), sum(s["lengths"]), n_classes)
        model.load_state_dict(_float(s["state"]))
        bits = np.unpackbits(s["codes"].numpy(), axis=1, count=sum(s["lengths"])).astype(np.int8)
        systems[name] = System(name, model.eval(), 2 * bits - 1, tuple(s["lengths"]), s["arch"],
                               {int(b): v for b, v in s["map"].items()})
    return Bundle(profile, systems, payload["db_labels"].numpy(), payload["query_labels"].numpy())


def build_bundle(profile: Profile | None = None, names=tuple(COURSE_METHODS), lengths=(12, 24, 32, 48),
                 iterations: int = 4, samples: int = 1500, progress: bool = True) -> Bundle:
    """Train the course's systems as notebook 05 does (from the notebook-01 backbone, the same
    seed and samples), round their weights to float16 and measure each one's mAP."""
    profile = profile or get_profile()
    seed_everything(profile.seed, profile.threads)
    splits = course_splits(profile, progress=progress)
    base, _ = load_or_train(profile, 48, splits, progress=progress)
    cfg = AsymmetricConfig(segments=tuple(lengths), iterations=iterations, epochs=1, samples=samples, seed=profile.seed)
    runs = train_methods(base.backbone, splits["train"], splits["val"], cfg, names, progress=progress)
    (q_x, q_y), db_y = splits["test"], splits["train"][1]
    systems = {}
    for name, (model, V, _) in runs.items():
        system = System(name, _rounded(model.cpu()), binarize(V.cpu().numpy()), tuple(lengths), COURSE_METHODS[name][1])
        system.map = system_map(system, q_x, q_y, db_y)
        systems[name] = system
    return Bundle(replace(profile, device="cpu"), systems, np.asarray(db_y), np.asarray(q_y))


def system_map(system: System, query_images, query_labels, db_labels) -> dict:
    """Tie-aware mAP of the query split at each code length: network codes against V."""
    codes = encode(system.model, query_images)
    return {b: mean_average_precision(codes[:, system.columns(b)], system.codes[:, system.columns(b)],
                                      np.asarray(query_labels), np.asarray(db_labels)) for b in system.lengths}


def bundle_from_runs(*runs) -> Bundle:
    """A bundle over run folders of ``python -m fgh_tutorial train`` on the same dataset
    (one system per run, named after its folder), to explore one's own trained runs."""
    from .runs import load_run, run_arch

    if not runs:
        raise ValueError("give at least one run folder")
    systems, profile, labels = {}, None, None
    for run in runs:
        config, model, prof = load_run(run)
        key = (prof.dataset, prof.image_size, prof.data_root)
        if profile is not None and key != (profile.dataset, profile.image_size, profile.data_root):
            raise ValueError(f"{run} was trained on {key[:2]}, the first run on {(profile.dataset, profile.image_size)}")
        profile = profile or prof
        labels = np.load(Path(run) / "db_labels.npy")
        name = Path(run).name
        if name in systems:
            raise ValueError(f"two runs are named {name!r}: give runs in folders of different names")
        metrics = Path(run) / "metrics.json"
        scores = {int(config["bits"]): json.loads(metrics.read_text())["map"]} if metrics.exists() else {}
        codes = np.load(Path(run) / "db_codes.npy")
        systems[name] = System(name, model, codes, (int(config["bits"]),), run_arch(config), scores)
    bundle = Bundle(profile, systems, labels, np.empty(0, np.int64))
    bundle.query_labels = np.asarray(bundle._splits["test"][1])
    return bundle


__all__ = ["Bundle", "DEFAULT_BUNDLE", "Retrieval", "System", "build_bundle", "bundle_from_runs", "explain",
           "load_bundle", "retrieve", "system_map"]
