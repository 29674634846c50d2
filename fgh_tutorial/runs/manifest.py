"""The record of a run folder, so that a run is either complete or visibly incomplete.

    DIR/config.json     written first: the run's settings and the fingerprint of its data
    DIR/...             the run's files, each written atomically (temporary file, then rename)
    DIR/manifest.json   written LAST: the settings, the data fingerprint, and the sha-256 of
                        every file of the finished run

A folder without manifest.json holds an interrupted run (or one still being written); a file
whose digest differs from the manifest was changed afterwards. ``train`` into a folder that
holds a run refuses, unless told ``force`` (start over: the manifest is deleted first, then the
run's files) or ``resume`` (continue, only when the settings and the data are the same).
``evaluate`` and ``query`` read a run only through :func:`check_run` and :func:`check_data`.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..data.fingerprint import compare, splits_fingerprint
from ..errors import BadData, BadFile, MissingFile
from ..files import file_digest, read_json, remove_temporaries, write_json
from .lock import describe_lock, lock_holder

FORMAT = 1
CONFIG, MANIFEST = "config.json", "manifest.json"
RUN_FILES = (CONFIG, "model.pt", "db_codes.npz", "metrics.json", "skipped_images.json", "checkpoints")
# features.npz (frozen mode) survives --force: it is checked on every read (fingerprint, width, labels) and
# computed again when it does not fit, so a damaged cache never fails a retry
RESUMABLE = ("device", "workers")  # settings that may differ when a run is resumed (results do not depend on them)
NOT_SETTINGS = ("data_fingerprint", "format", "n_classes")  # compared as the data, not as settings


class RunFolderError(BadFile):
    """A run folder that cannot be used as asked; the message says what to do."""


class DataChanged(RunFolderError, BadData):
    """The data of a run is not the data it was trained on."""


def holds_run(folder) -> bool:
    """Whether ``folder`` holds a run of ``train`` (finished, unfinished, or being written)."""
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        return True
    try:
        config = json.loads((folder / CONFIG).read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"method", "bits", "dataset"} <= set(config)


def enclosing_run(path) -> Path | None:
    """The run folder that holds ``path`` (the path itself or a folder above it), or None."""
    path = Path(path).expanduser().absolute()
    for folder in (path, *path.parents):
        if folder.is_dir() and holds_run(folder):
            return folder
    return None


def sha256(path) -> str:
    return file_digest(path, "sha256")


# ---------------------------------------------------------------- settings and data
def describe(config: dict) -> str:
    return (f"{config.get('method', '?')}, {config.get('bits', '?')} bits, {config.get('dataset', '?')} data, "
            f"{config.get('profile', '?')} profile")


def data_fingerprint(profile, splits: dict | None = None) -> dict:
    """The fingerprint of a profile's data: of its splits when given, and of the settings that
    generate SynthBirds (which alone can be checked without drawing the images)."""
    source = None
    if profile.dataset == "synthetic":
        source = {k: getattr(profile, k) for k in ("per_class", "per_class_query", "per_class_val", "image_size", "seed")}
    return splits_fingerprint(splits or {}, profile.data_root, source)


def _flat(config: dict) -> dict:
    """Settings as JSON stores them (tuples become lists), nested dicts as dotted keys."""
    out = {}
    for key, value in json.loads(json.dumps(config)).items():
        if key in NOT_SETTINGS:
            continue
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def settings_differences(old: dict, new: dict) -> list[str]:
    """``key=value there, value now`` for every setting (but RESUMABLE ones) that differs."""
    old, new = _flat(old), _flat(new)
    keys = [k for k in sorted(set(old) | set(new)) if k not in RESUMABLE and k.rsplit(".", 1)[-1] not in RESUMABLE]
    return [f"{k}={old.get(k)!r} there, {new.get(k)!r} now" for k in keys if old.get(k) != new.get(k)]


# ---------------------------------------------------------------- training into a folder
def run_state(folder) -> str:
    """"empty" (no run), "complete" (a manifest) or "incomplete" (run files, no manifest)."""
    folder = Path(folder)
    if (folder / MANIFEST).exists():
        return "complete"
    return "incomplete" if any((folder / name).exists() for name in RUN_FILES) else "empty"


def begin_run(folder, config: dict, force: bool = False, resume: bool = False, write: bool = True) -> dict | None:
    """Make ``folder`` ready for training the run ``config`` (call under the folder's lock).

    An empty folder, or ``force``: the old run's files are deleted (manifest first) and
    config.json is written. ``resume``: the run there must have the same settings and data
    fingerprint; returns its manifest when it is already complete (nothing left to do).
    Otherwise a folder holding a run is refused. ``write=False`` only checks (before the data
    is loaded, so that a refusal comes at once)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file, not a folder")
    state = run_state(folder)
    if state != "empty" and not force:
        old = _old_config(folder, state)
        if not resume:
            what = "a finished run" if state == "complete" else "an unfinished run"
            how = "" if state == "complete" else f"; interrupted: no {MANIFEST}"
            raise RunFolderError(f"{folder} already holds {what} ({describe(old) if old else 'settings unknown'}{how}); "
                                 "pass --resume to continue a run with the same settings, --force to start over, "
                                 "or choose another --out")
        diffs = settings_differences(old or {}, config) if old else ["its config.json is missing"]
        if "data_fingerprint" in config and old:
            diffs += [f"data: {d} changed" for d in compare(old.get("data_fingerprint", {}), config["data_fingerprint"])[0]]
        if diffs:
            raise RunFolderError(f"cannot resume the run in {folder}: {'; '.join(diffs)}. Use --force to start over, "
                                 "or choose another --out")
        if state == "complete":
            return check_run(folder)
    if write:
        if state != "empty" and not (resume and not force):
            clear_run(folder)
        write_json(folder / CONFIG, config)
    return None


def _old_config(folder, state):
    try:
        return read_json(folder / MANIFEST).get("config") if state == "complete" else read_json(folder / CONFIG)
    except (FileNotFoundError, BadFile):
        return None


def clear_run(folder) -> None:
    """Delete a run's files, the manifest first: an interrupted deletion leaves an incomplete run."""
    folder = Path(folder)
    listed = []
    if (folder / MANIFEST).exists():
        try:
            listed = list(read_json(folder / MANIFEST).get("files", {}))
        except BadFile:
            pass
        (folder / MANIFEST).unlink()
    for name in dict.fromkeys([*listed, *RUN_FILES]):
        path = folder / name
        if path.resolve().parent != folder.resolve():
            continue  # only the folder's own entries
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    remove_temporaries(folder)


def finish_run(folder, config: dict, files, **extra) -> Path:
    """Write the manifest (last): the settings, and the digest of each of ``files``."""
    folder = Path(folder)
    remove_temporaries(folder)  # of writes interrupted before a resume: the finished run holds none
    digests = {str(name): {"sha256": sha256(folder / name), "size": (folder / name).stat().st_size}
               for name in [CONFIG, *files]}
    return write_json(folder / MANIFEST, {"format": FORMAT, "config": config, "files": digests, **extra})


# ---------------------------------------------------------------- reading a run
def check_run(folder) -> dict:
    """The manifest of a complete, unchanged run in ``folder``, or a clear error."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFile(f"{folder} is a file, not a run folder" if folder.exists() else
                                f"run folder {folder} does not exist")
    if not (folder / MANIFEST).exists():
        holder = lock_holder(folder)
        if holder is not None:
            raise RunFolderError(f"{folder} holds no finished run yet: {describe_lock(folder, holder)}")
        if run_state(folder) == "incomplete":
            raise RunFolderError(f"{folder} holds an unfinished run (no {MANIFEST}: it was interrupted): continue it with "
                                 f"'python -m fgh_tutorial train --resume --out {folder}' and the same settings, or start "
                                 "over with --force")
        raise MissingFile(f"{folder / MANIFEST} is missing: is {folder} a run folder of 'python -m fgh_tutorial train'?")
    manifest = read_json(folder / MANIFEST)
    if manifest.get("format") != FORMAT or not isinstance(manifest.get("config"), dict) \
            or not isinstance(manifest.get("files"), dict):
        raise RunFolderError(f"{folder / MANIFEST} is not a run manifest of format {FORMAT}")
    for name, meta in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise RunFolderError(f"{path} is missing: the run in {folder} is damaged; train it again with --force")
        if path.stat().st_size != meta.get("size") or sha256(path) != meta.get("sha256"):
            raise RunFolderError(f"{path} was changed after the run was written (its digest differs from "
                                 f"{MANIFEST}); train the run again with --force")
    return manifest


def check_data(folder, recorded: dict, current: dict) -> list[str]:
    """Raise when the data differs from the data the run was trained on; returns warnings."""
    changed, warnings = compare(recorded or {}, current)
    if changed:
        raise DataChanged(f"the data changed since the run in {folder} was trained ({'; '.join(changed)}): its "
                             "database codes belong to other images. Restore the data, or train again with --force")
    return [f"the data of {folder}: {w} differ since training (files touched or copied?)" for w in warnings]


__all__ = ["CONFIG", "DataChanged", "MANIFEST", "RunFolderError", "begin_run", "check_data", "check_run", "clear_run",
           "data_fingerprint", "describe", "enclosing_run", "finish_run", "holds_run", "read_json", "run_state", "sha256",
           "write_json"]
