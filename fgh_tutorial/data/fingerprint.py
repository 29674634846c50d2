"""Fingerprints of a split's data, to tell later whether it is still the data a run was trained on.

A split's fingerprint is a dict of short sha-256 digests:

    n        the number of items
    labels   the class ids, in order
    files    image files (Datasets of files): each file's path relative to the data root, and size
    mtimes   ... and modification times (a copy of the data changes these alone)
    content  tensor data (SynthBirds): the pixel values of up to 64 evenly spaced images, at 1e-3

:func:`compare` lists what differs between two fingerprints, where both have a key: a
difference in anything but ``mtimes`` means other data; ``mtimes`` alone is a warning.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

SAMPLED = 64  # images hashed for the content of tensor data
WHAT = {"n": "the number of images", "labels": "the labels", "files": "the image files (names or sizes)",
        "content": "the images", "mtimes": "the files' modification times", "source": "the generator's settings"}


def _digest(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def split_files(data) -> list | None:
    """The image file of every item of a Dataset (or Subset of one), in order; None when unknown."""
    if hasattr(data, "indices") and hasattr(data, "dataset"):
        inner = split_files(data.dataset)
        return None if inner is None else [inner[int(i)] for i in data.indices]
    if hasattr(data, "samples"):
        return [Path(p) for p, *_ in data.samples]
    if hasattr(data, "_image_files"):
        return [Path(p) for p in data._image_files]
    return None


def fingerprint(data, labels, root=None) -> dict:
    """The fingerprint of one split: ``data`` a tensor or a Dataset, ``labels`` its class ids,
    ``root`` the folder file paths are taken relative to (so a moved dataset keeps its print)."""
    y = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(np.int64).ravel()
    out = {"n": int(len(y)), "labels": _digest(y.tobytes())}
    files = split_files(data)
    if files is not None:
        names, sizes, mtimes = [], [], []
        for path in files:
            try:
                st = os.stat(path)
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:
                size, mtime = -1, -1
            names.append(_relative(path, root))
            sizes.append(size)
            mtimes.append(mtime)
        out["files"] = _digest(names, sizes)
        out["mtimes"] = _digest(mtimes)
    elif hasattr(data, "shape") and len(data):
        rows = np.unique(np.linspace(0, len(data) - 1, min(SAMPLED, len(data))).round().astype(np.int64))
        sample = np.asarray(data[rows].cpu() if hasattr(data, "cpu") else data[rows], dtype=np.float64)
        out["content"] = _digest(tuple(data.shape), np.rint(sample * 1000).astype(np.int64).tobytes())
    return out


def _relative(path, root) -> str:
    path = Path(path)
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).expanduser().resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()


def splits_fingerprint(splits: dict, root=None, source: dict | None = None) -> dict:
    """Fingerprints of every (data, labels) split; ``source``: settings that generate the data."""
    out = {name: fingerprint(*value, root) for name, value in splits.items()
           if isinstance(value, tuple) and len(value) == 2}
    if source is not None:
        out["source"] = {"settings": _digest(sorted(source.items()))}
    return out


def compare(old: dict, new: dict) -> tuple[list[str], list[str]]:
    """(differences, warnings) between two fingerprints of the same splits, in words."""
    changed, warnings = [], []
    for split in sorted(set(old) & set(new)):
        a, b = old[split], new[split]
        if not isinstance(a, dict) or not isinstance(b, dict):
            continue
        keys = [k for k in sorted(set(a) & set(b)) if a[k] != b[k]]
        if "n" in keys:  # another count explains the rest
            keys = ["n"] + [k for k in keys if k == "mtimes"]
        for key in keys:
            what = f"{split}: {WHAT.get(key, key)}" if split != "source" else WHAT["source"]
            if key == "n":
                what += f" ({a[key]} then, {b[key]} now)"
            (warnings if key == "mtimes" else changed).append(what)
    return changed, warnings

__all__ = ["compare", "fingerprint", "split_files", "splits_fingerprint"]
