"""Training a run into its folder (``python -m fgh_tutorial train``): the settings are checked
and planned first (``config.py``), the folder, its names and the memory of a batch next
(``checks.py``), and only then is the data loaded, under the folder's lock (``lock.py``);
config.json is written before the work and manifest.json after it (``manifest.py``).
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..data import course_splits, skipped_images
from ..errors import BadOption
from ..models.device import check_device
from ..models.encode import encode
from ..retrieval.codes import binarize, pack_codes, save_codes
from ..systems import get_system
from ..training.checkpoints import save_checkpoint
from ..training.frozen import FEATURE_BATCH, encode_features, train_frozen
from ..training.profiles import seed_everything
from ..training.top_stages import train_top
from .checks import check_output_folder, check_sizes, check_splits
from .config import RunConfig, check_frozen, check_train_top, per_length, plan, run_backbone
from .folder import RUN_WRITES, build_model, retrieval_metrics, run_profile_of
from .lock import RunLock
from .manifest import RunFolderError, begin_run, data_fingerprint, finish_run, read_json, write_json


def train_run(out, config: RunConfig | None = None, progress: bool = True, force: bool = False, resume: bool = False,
              dist=None, **settings) -> dict:
    """Train the run ``config`` (or the one of ``settings``, the options of ``options.OPTIONS`` by
    name: dataset, data, bits, method, profile, iterations, ...) and write the run folder ``out``;
    returns the metrics.

    A folder that holds a run already is refused, unless ``force`` (start over) or ``resume``
    (continue its checkpoint, only when its settings and data are the ones given now; a finished
    run is returned as it is). ``on_bad_image``: "fail" stops at the first image file that cannot
    be decoded, naming it; "skip" leaves such files out and lists them in skipped_images.json.
    ``dist`` (``training.distributed.join_from_env()`` under torchrun): each process trains on its
    shard of every batch on its device; rank 0 alone locks and writes the folder, the others return {}.
    ``bits``: one code length or several ("12,24,32,48", one head segment each; metrics per length)."""
    if force and resume:
        raise BadOption("force and resume exclude each other: start over (force) or continue (resume)")
    if config is not None and settings:
        raise BadOption(f"give the run's settings as a RunConfig or by name, not both ({', '.join(settings)})")
    config = RunConfig.checked(**settings) if config is None else config
    system = get_system(config.method)
    check_frozen(system, config)
    prof = run_profile_of(config)
    check_train_top(system, config, prof)
    if config.device is None and prof.device == "cuda" and not torch.cuda.is_available():
        prof = replace(prof, device="cpu")
    if dist is not None:  # one GPU per process (LOCAL_RANK), or the CPU
        _check_distributed(system, config)
        prof = replace(prof, device=str(dist.device))
    main = dist is None or dist.is_main
    progress = progress and main
    check_device(prof.device, "device")
    config, cfg = plan(system, config, prof)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    if main:  # before any work: the folder, the names of its files, the memory of a batch
        check_output_folder(out, RUN_WRITES)
    check_sizes(prof.image_size, max(cfg.batch_size, FEATURE_BATCH) if config.freeze_backbone else cfg.batch_size)
    with RunLock(out) if main else contextlib.nullcontext():
        if main:
            begin_run(out, config.to_json(), force, resume, write=False)  # refuse at once, before loading the data
        seed_everything(prof.seed, prof.threads)
        splits = course_splits(prof, progress=progress, on_bad_image=config.on_bad_image)
        check_splits(splits, prof.data_root)
        (db_x, db_y), (q_x, q_y), val = splits["train"], splits["test"], splits["val"]
        config = replace(config, n_classes=int(max(db_y.max(), q_y.max())) + 1,
                         data_fingerprint=data_fingerprint(prof, splits))
        finished = main and begin_run(out, config.to_json(), force, resume) is not None  # resume of a finished run
        if dist is not None:  # everyone waits until rank 0 has made the folder ready
            finished = dist.decide(finished)
        if finished:  # nothing to do
            return read_json(out / "metrics.json") if main else {}
        files = ["model.pt", "db_codes.npz", "metrics.json"]
        if (skipped := skipped_images(splits)) and main:
            write_json(out / "skipped_images.json", [{"path": p, "reason": r} for p, r in skipped])
            files.append("skipped_images.json")
        if config.freeze_backbone:  # features cached in the run folder, then the hash layer alone
            model, V, hist, feats = train_frozen(run_backbone(config, prof), splits, cfg, out, prof.device,
                                                 config.workers, progress)
        elif config.train_top:  # maps of the frozen stages cached in the run folder, then the top
            model, V, hist, q_codes = train_top(system, run_backbone(config, prof), config.n_classes, splits, cfg,
                                                config.train_top, out, prof.device, config.workers, progress)
        else:
            model = build_model(config, prof, config.n_classes).to(prof.device)
            V, hist = system.train(model, db_x, db_y, cfg, checkpoint_dir=out / "checkpoints", val=val,
                                   progress=progress, **({} if dist is None else {"dist": dist}))
        if not main:
            return {}
        save_checkpoint(out / "model.pt", model.state_dict())
        db_codes = binarize(V)
        save_codes(out / "db_codes.npz", pack_codes(db_codes), config.bits, labels=db_y.cpu().numpy())
        if not config.train_top:  # --train-top: the codes of the cached query maps
            q_codes = encode_features(model, feats["test"][0]) if config.freeze_backbone else encode(model, q_x)
        metrics = per_length(retrieval_metrics, q_codes, db_codes, q_y, db_y, config.lengths)
        metrics["history"] = asdict(hist)
        write_json(out / "metrics.json", metrics)
        finish_run(out, config.to_json(), files)  # last: the run is complete
    return metrics


def _check_distributed(system, config: RunConfig) -> None:
    """What data-parallel training (torchrun) cannot run."""
    if config.freeze_backbone:
        raise BadOption("--freeze-backbone trains one hash layer on cached features in one process: run it without "
                        "torchrun (python -m fgh_tutorial train ...)")
    if not system.asymmetric:
        raise BadOption(f"--method {config.method}: data-parallel training (torchrun) runs the asymmetric systems only")
    if config.train_top:
        raise BadOption("--train-top trains on cached maps in one process: run it without torchrun "
                        "(python -m fgh_tutorial train ...)")


__all__ = ["train_run"]
