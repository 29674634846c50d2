"""A run folder: what ``python -m fgh_tutorial train`` writes (``train.py``) and ``evaluate``,
``query``, ``encode`` and ``explore`` read.

    DIR/config.json       the run's settings (``RunConfig``: dataset, method = a system of systems.py, bits,
                          profile, schedule) and the fingerprint of its data (written first)
    DIR/model.pt          the network's weights
    DIR/checkpoints/      per-epoch state for resuming an interrupted run
    DIR/db_codes.npz      database codes (V from the solver; the network's codes of the database for systems
                          not trained asymmetrically), packed words (retrieval/codes.py), with the labels
    DIR/metrics.json      mAP (tie-aware and legacy), precision@10 of the query split
    DIR/skipped_images.json  image files left out (--on-bad-image skip), when there are any
    DIR/manifest.json     written last: the settings and the digest of every file (manifest.py)

Every file is written atomically and the manifest last, under the folder's lock (lock.py), so a
run is complete or visibly incomplete; ``evaluate`` and ``query`` check it and the data first.
"""
from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..data import course_splits, default_transform, open_image
from ..errors import BadFile, BadOption
from ..models.encode import encode
from ..retrieval.codes import load_codes, unpack_codes
from ..retrieval.metrics import mean_average_precision, precision_at_k
from ..systems import get_system
from ..training.checkpoints import load_checkpoint
from ..training.profiles import get_profile
from .checks import check_image_files
from .config import RunConfig, columns, per_length, run_backbone, run_profile
from .manifest import RunFolderError, check_data, check_run, data_fingerprint, describe, read_json

# what train writes into its folder (with a temporary file beside each): their names must fit the filesystem
RUN_WRITES = ("config.json", "model.pt", "db_codes.npz", "metrics.json", "skipped_images.json", "manifest.json",
              "features.npz", ".lock", "checkpoints/asymmetric.pt", "checkpoints/triplets.pt")


def run_profile_of(config: RunConfig):
    """The profile a run trains or reads with: its profile, dataset, data, device and options."""
    profile = get_profile(config.profile, dataset=config.dataset, data_root=config.data)
    return run_profile(replace(profile, device=config.device or profile.device), config)


def build_model(config: RunConfig, profile, n_classes: int, load: bool = False):
    """The run's network (``load``: with a bare backbone, to load trained weights into)."""
    backbone = run_backbone(config, profile, load)  # config.bits: all code lengths together
    return get_system(config.method).build(backbone, config.bits, n_classes)


def retrieval_metrics(q_codes, db_codes, q_y, db_y) -> dict:
    return {"map": mean_average_precision(q_codes, db_codes, q_y, db_y),
            "map_legacy": mean_average_precision(q_codes, db_codes, q_y, db_y, ties="stable"),
            "precision_at_10": precision_at_k(q_codes, db_codes, q_y, db_y, 10),
            "queries": int(len(q_codes)), "database": int(len(db_codes)), "bits": int(q_codes.shape[1])}


def load_run(run):
    """(RunConfig, model in eval mode, profile) of a finished run folder, checked against its manifest."""
    run = Path(run)
    record = check_run(run)["config"]
    config = RunConfig.from_json(record)
    prof = replace(run_profile_of(config), device="cpu")
    _, labels = run_database(run, config)
    model = build_model(config, prof, config.n_classes or int(labels.max()) + 1, load=True)
    try:
        model.load_state_dict(load_checkpoint(run / "model.pt"))
    except (RuntimeError, KeyError, TypeError) as err:
        raise RunFolderError(f"{run / 'model.pt'} does not fit the network of {describe(record)} "
                             f"({str(err).splitlines()[0][:160]}); train the run again with --force") from None
    return config, model.eval(), prof


def run_database(run, config: RunConfig | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(database codes +-1 int8, database labels) of a run folder; with the run's ``config``, the
    codes' width is checked against its code lengths."""
    path = Path(run) / "db_codes.npz"
    words, bits, extra = load_codes(path, None if config is None else config.bits)
    if "labels" not in extra or len(extra["labels"]) != len(words):
        raise BadFile(f"{path} holds no database labels for its {len(words)} codes")
    return unpack_codes(words, bits), extra["labels"]


def skipped_files(run) -> list:
    """The image files a run left out (``--on-bad-image skip``), as its skipped_images.json lists them."""
    path = Path(run) / "skipped_images.json"
    if not path.exists():
        return []
    items = read_json(path, list)
    if not all(isinstance(item, dict) and isinstance(item.get("path"), str) for item in items):
        raise BadFile(f"{path} is damaged: a list of {{'path', 'reason'}} entries was expected")
    return [item["path"] for item in items]


def run_splits(run, config: RunConfig, prof, strict: bool = True) -> dict | None:
    """The splits of a run's data, checked against its fingerprint: a change raises (``strict``)
    or warns; file times alone warn. Without ``strict``, SynthBirds is checked by its settings
    alone and a real dataset that cannot be read only warns (returns None then)."""
    recorded = config.data_fingerprint or {}
    try:
        splits = course_splits(prof, exclude=skipped_files(run)) if strict or prof.dataset != "synthetic" else None
    except (FileNotFoundError, ValueError) as err:
        warnings.warn(f"cannot check the data of {run} against its fingerprint: {err}", stacklevel=2)
        return None
    try:
        notes = check_data(run, recorded, data_fingerprint(prof, splits))
    except RunFolderError as err:
        if strict:
            raise
        notes = [f"{err} (the results below refer to the data the run was trained on)"]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return splits


def evaluate_run(run, encode_database: bool = False) -> dict:
    """Metrics of a run on its query split: database codes V (asymmetric), or the network's
    codes of the database images with ``encode_database``. Refuses when the data changed."""
    config, model, prof = load_run(run)
    splits = run_splits(run, config, prof)
    (db_x, db_y), (q_x, q_y) = splits["train"], splits["test"]
    codes, labels = run_database(run, config)
    db_codes, db_y = (encode(model, db_x), db_y) if encode_database else (codes, labels)
    metrics = per_length(retrieval_metrics, encode(model, q_x), db_codes, q_y, db_y, config.lengths)
    return {**metrics, "database_codes": "network" if encode_database else "V"}


def query_run(run, images, k: int = 10, bits: int | None = None) -> list:
    """Top-k database items of each image file: [(path, [(db index, label, distance), ...])];
    ``bits``: the code length to search with, in a run of several (default: the longest)."""
    from ..retrieval.index import HammingIndex, check_k

    check_k(k)
    images = [images] if isinstance(images, (str, Path)) else list(images)
    if not images:
        raise BadOption("images: give at least one image file")
    config, model, prof = load_run(run)
    images = check_image_files(images)
    lengths = config.lengths
    cols = columns(lengths, max(lengths) if bits is None else int(bits))
    run_splits(run, config, prof, strict=False)
    transform = default_transform(prof.image_size)
    x = torch.stack([transform(open_image(p)) for p in images])
    codes, labels = run_database(run, config)
    index = HammingIndex(cols.stop - cols.start).add(np.ascontiguousarray(codes[:, cols]))
    dist, ids = index.search(np.ascontiguousarray(encode(model, x)[:, cols]), k)
    return [(str(p), [(int(i), int(labels[i]), int(d)) for i, d in zip(row_i, row_d)])
            for p, row_i, row_d in zip(images, ids, dist)]


__all__ = ["RUN_WRITES", "build_model", "evaluate_run", "load_run", "query_run", "retrieval_metrics", "run_database",
           "run_profile_of", "run_splits", "skipped_files"]
