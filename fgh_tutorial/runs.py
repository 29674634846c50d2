"""A training run on disk: what ``python -m fgh_tutorial train`` writes and ``evaluate`` and
``query`` read.

    DIR/config.json       the run's settings (dataset, method = a system of systems.py, bits, profile, schedule)
                          and the fingerprint of its data (written first)
    DIR/model.pt          the network's weights
    DIR/checkpoints/      per-epoch state for resuming an interrupted run
    DIR/db_codes.npz      database codes (V from the solver; the network's codes of the database for systems
                          not trained asymmetrically), packed words (retrieval/codes.py), with the labels
    DIR/metrics.json      mAP (tie-aware and legacy), precision@10 of the query split
    DIR/skipped_images.json  image files left out (--on-bad-image skip), when there are any
    DIR/manifest.json     written last: the settings and the digest of every file (manifest.py)

Every file is written atomically and the manifest last, under the folder's lock (runlock.py), so a
run is complete or visibly incomplete; ``evaluate`` and ``query`` check it and the data first.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .checks import check_image_files, check_output_folder, check_sizes, check_splits
from .data import course_splits, default_transform, open_image, skipped_images
from .data.images import check_policy
from .errors import BadFile, BadOption
from .manifest import (RunFolderError, begin_run, check_data, check_run, data_fingerprint, describe, finish_run,
                       read_json, write_json)
from .models.device import check_device
from .models.encode import encode
from .retrieval.codes import binarize, load_codes, pack_codes, save_codes, unpack_codes
from .retrieval.metrics import mean_average_precision, precision_at_k
from .systems import SYSTEMS, get_system
from .training.checkpoints import load_checkpoint, save_checkpoint
from .training.profiles import get_profile, seed_everything
from .runlock import RunLock
from .run_options import (check_frozen, chosen, columns, parse_lengths, per_length, run_backbone, run_config,
                          run_lengths, run_profile)
from .run_options import check_train_top
from .training.frozen import FEATURE_BATCH, encode_features, train_frozen
from .training.top_stages import train_top

# what train writes into its folder (with a temporary file beside each): their names must fit the filesystem
RUN_WRITES = ("config.json", "model.pt", "db_codes.npz", "metrics.json", "skipped_images.json", "manifest.json",
              "features.npz", ".lock", "checkpoints/asymmetric.pt", "checkpoints/triplets.pt")


def _profile(config):
    profile = get_profile(config["profile"], dataset=config["dataset"], data_root=config.get("data"))
    return run_profile(replace(profile, device=config.get("device") or profile.device), config)


def _model(config, profile, n_classes, load=False):
    backbone = run_backbone(config, profile, load)  # config["bits"]: all code lengths together
    return get_system(config["method"]).build(backbone, config["bits"], n_classes)


def train_run(out, dataset="synthetic", data=None, bits=48, method="adsh", profile="cpu", iterations=None,
              epochs=None, samples=None, device=None, progress=True, force=False, resume=False,
              on_bad_image="fail", dist=None, **options) -> dict:
    """Train asymmetrically and write the run folder ``out``; returns the metrics.

    A folder that holds a run already is refused, unless ``force`` (start over) or ``resume``
    (continue its checkpoint, only when its settings and data are the ones given now; a finished
    run is returned as it is). ``on_bad_image``: "fail" stops at the first image file that cannot
    be decoded, naming it; "skip" leaves such files out and lists them in skipped_images.json.
    ``dist`` (``training.distributed.join_from_env()`` under torchrun): each process trains on its
    shard of every batch on its device; rank 0 alone locks and writes the folder, the others return {}.
    ``bits``: one code length or several ("12,24,32,48", one head segment each; metrics per length).
    ``options``: backbone, weights, image_size, lr, batch_size, schedule, workers, freeze_backbone,
    positives, compile, train_top (run_options.py)."""
    if force and resume:
        raise BadOption("force and resume exclude each other: start over (force) or continue (resume)")
    system = get_system(method)
    lengths = parse_lengths(bits)
    config = {"dataset": dataset, "data": str(data) if data else None, "bits": sum(lengths), "method": method,
              "profile": profile, "iterations": iterations, "epochs": epochs, "samples": samples, "device": device,
              "on_bad_image": check_policy(on_bad_image), **({"lengths": list(lengths)} if len(lengths) > 1 else {}),
              **chosen(options)}
    check_frozen(system, config)
    prof = _profile(config)
    check_train_top(system, config, prof)
    if device is None and prof.device == "cuda" and not torch.cuda.is_available():
        prof = replace(prof, device="cpu")
    if dist is not None:  # one GPU per process (LOCAL_RANK), or the CPU
        if config.get("freeze_backbone"):
            raise BadOption("--freeze-backbone trains one hash layer on cached features in one process: run it without "
                            "torchrun (python -m fgh_tutorial train ...)")
        if not system.asymmetric:
            raise BadOption(f"--method {method}: data-parallel training (torchrun) runs the asymmetric systems only")
        if config.get("train_top"):
            raise BadOption("--train-top trains on cached maps in one process: run it without torchrun "
                            "(python -m fgh_tutorial train ...)")
        prof = replace(prof, device=str(dist.device))
    main = dist is None or dist.is_main
    progress = progress and main
    check_device(prof.device, "device")
    cfg = run_config(system, config, prof)
    config["schedule"] = asdict(cfg)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    if main:  # before any work: the folder, the names of its files, the memory of a batch
        check_output_folder(out, RUN_WRITES)
    check_sizes(prof.image_size, max(cfg.batch_size, FEATURE_BATCH) if config.get("freeze_backbone") else cfg.batch_size)
    with RunLock(out) if main else contextlib.nullcontext():
        if main:
            begin_run(out, config, force, resume, write=False)  # refuse at once, before loading the data
        seed_everything(prof.seed, prof.threads)
        splits = course_splits(prof, progress=progress, on_bad_image=on_bad_image)
        check_splits(splits, prof.data_root)
        (db_x, db_y), (q_x, q_y), val = splits["train"], splits["test"], splits["val"]
        config["n_classes"] = int(max(db_y.max(), q_y.max())) + 1
        config["data_fingerprint"] = data_fingerprint(prof, splits)
        finished = main and begin_run(out, config, force, resume) is not None  # resume of a finished run
        if dist is not None:  # everyone waits until rank 0 has made the folder ready
            finished = dist.decide(finished)
        if finished:  # nothing to do
            return read_json(out / "metrics.json") if main else {}
        files = ["model.pt", "db_codes.npz", "metrics.json"]
        if (skipped := skipped_images(splits)) and main:
            write_json(out / "skipped_images.json", [{"path": p, "reason": r} for p, r in skipped])
            files.append("skipped_images.json")
        if config.get("freeze_backbone"):  # features cached in the run folder, then the hash layer alone
            model, V, hist, feats = train_frozen(run_backbone(config, prof), splits, cfg, out, prof.device,
                                                 config.get("workers"), progress)
        elif config.get("train_top"):  # maps of the frozen stages cached in the run folder, then the top
            model, V, hist, q_codes = train_top(system, run_backbone(config, prof), config["n_classes"], splits, cfg,
                                                config["train_top"], out, prof.device, config.get("workers"), progress)
        else:
            model = _model(config, prof, config["n_classes"]).to(prof.device)
            V, hist = system.train(model, db_x, db_y, cfg, checkpoint_dir=out / "checkpoints", val=val,
                                   progress=progress, **({} if dist is None else {"dist": dist}))
        if not main:
            return {}
        save_checkpoint(out / "model.pt", model.state_dict())
        db_codes = binarize(V)
        save_codes(out / "db_codes.npz", pack_codes(db_codes), config["bits"], labels=db_y.cpu().numpy())
        if not config.get("train_top"):  # --train-top: the codes of the cached query maps
            q_codes = encode_features(model, feats["test"][0]) if config.get("freeze_backbone") else encode(model, q_x)
        metrics = per_length(_metrics, q_codes, db_codes, q_y, db_y, lengths)
        metrics["history"] = asdict(hist)
        write_json(out / "metrics.json", metrics)
        finish_run(out, config, files)  # last: the run is complete
    return metrics


def _metrics(q_codes, db_codes, q_y, db_y) -> dict:
    return {"map": mean_average_precision(q_codes, db_codes, q_y, db_y),
            "map_legacy": mean_average_precision(q_codes, db_codes, q_y, db_y, ties="stable"),
            "precision_at_10": precision_at_k(q_codes, db_codes, q_y, db_y, 10),
            "queries": int(len(q_codes)), "database": int(len(db_codes)), "bits": int(q_codes.shape[1])}


def load_run(run):
    """(config, model in eval mode, profile) of a finished run folder, checked against its manifest."""
    run = Path(run)
    config = check_run(run)["config"]
    prof = replace(_profile(config), device="cpu")
    _, labels = run_database(run, config)
    model = _model(config, prof, config.get("n_classes") or int(labels.max()) + 1, load=True)
    try:
        model.load_state_dict(load_checkpoint(run / "model.pt"))
    except (RuntimeError, KeyError, TypeError) as err:
        raise RunFolderError(f"{run / 'model.pt'} does not fit the network of {describe(config)} "
                             f"({str(err).splitlines()[0][:160]}); train the run again with --force") from None
    return config, model.eval(), prof


def run_database(run, config: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(database codes +-1 int8, database labels) of a run folder; with the run's ``config``, the
    codes' width is checked against its code lengths."""
    path = Path(run) / "db_codes.npz"
    words, bits, extra = load_codes(path, None if config is None else int(config["bits"]))
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


def run_splits(run, config, prof, strict: bool = True) -> dict | None:
    """The splits of a run's data, checked against its fingerprint: a change raises (``strict``)
    or warns; file times alone warn. Without ``strict``, SynthBirds is checked by its settings
    alone and a real dataset that cannot be read only warns (returns None then)."""
    recorded = config.get("data_fingerprint", {})
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
    metrics = per_length(_metrics, encode(model, q_x), db_codes, q_y, db_y, run_lengths(config))
    return {**metrics, "database_codes": "network" if encode_database else "V"}


def query_run(run, images, k: int = 10, bits: int | None = None) -> list:
    """Top-k database items of each image file: [(path, [(db index, label, distance), ...])];
    ``bits``: the code length to search with, in a run of several (default: the longest)."""
    from .retrieval.index import HammingIndex, check_k

    check_k(k)
    images = [images] if isinstance(images, (str, Path)) else list(images)
    if not images:
        raise BadOption("images: give at least one image file")
    config, model, prof = load_run(run)
    images = check_image_files(images)
    lengths = run_lengths(config)
    cols = columns(lengths, max(lengths) if bits is None else int(bits))
    run_splits(run, config, prof, strict=False)
    transform = default_transform(prof.image_size)
    x = torch.stack([transform(open_image(p)) for p in images])
    codes, labels = run_database(run, config)
    index = HammingIndex(cols.stop - cols.start).add(np.ascontiguousarray(codes[:, cols]))
    dist, ids = index.search(np.ascontiguousarray(encode(model, x)[:, cols]), k)
    return [(str(p), [(int(i), int(labels[i]), int(d)) for i, d in zip(row_i, row_d)])
            for p, row_i, row_d in zip(images, ids, dist)]


__all__ = ["RUN_WRITES", "SYSTEMS", "evaluate_run", "load_run", "query_run", "run_database", "run_splits", "skipped_files",
           "train_run"]
