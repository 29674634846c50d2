"""A user's own folder of images as a dataset: ``root/<class>/<image>`` split per class by a
seed, or ``root/train/<class>/<image>`` and ``root/test/<class>/<image>``.

A folder that gives no queries (or no database images) is told so, with the number of images
per class a split needs; a class folder that cannot be read stops with its name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadData, BadOption
from .images import IMAGE_SUFFIXES, list_images, unreadable
from .real import SPLITS, DatasetNotFound, ImageList, _check_split


def image_folder(root, split="train", transform=None, test_fraction: float = 0.3, seed: int = 0) -> ImageList:
    """A user's images: root/train/<class>/* and root/test/<class>/*, or root/<class>/*
    split per class by ``seed`` (``test_fraction`` of each class become queries)."""
    _check_split(split)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetNotFound(f"folder {root} does not exist")
    found = 0  # images of both splits
    if (root / "train").is_dir() and (root / "test").is_dir():
        classes = _class_dirs(root / "train")
        samples = [(p, classes.index(c)) for c in classes for p in _images(root / split / c)]
        found = len(samples) + sum(len(_images(root / other / c)) for other in SPLITS if other != split
                                   for c in classes)
        extra = sorted(set(_class_dirs(root / "test")) - set(classes))
        if extra:
            raise BadData(f"{root / 'test'} has classes not in train: {extra[:5]}")
    else:
        if not 0 < test_fraction < 1:
            raise BadOption(f"test_fraction must be in (0, 1), got {test_fraction}")
        classes = _class_dirs(root)
        rng = np.random.default_rng(seed)
        samples = []
        for k, c in enumerate(classes):
            files = _images(root / c)
            found += len(files)
            n_test = int(round(test_fraction * len(files)))
            test = set(rng.permutation(len(files))[:n_test].tolist())
            samples += [(f, k) for i, f in enumerate(files) if (i in test) == (split == "test")]
    if not samples:
        what = "queries" if split == "test" else "database images"
        if not found:
            raise DatasetNotFound(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {root}; expected "
                                  "root/<class>/<image>, or root/train/<class>/<image> and root/test/<class>/<image>")
        if (root / "train").is_dir() and (root / "test").is_dir():
            raise BadData(f"{root}: no {what}: {root / split} holds no images of the classes of {root / 'train'}")
        need = next(n for n in range(1, 10**6) if (round(test_fraction * n) if split == "test" else
                                                      n - round(test_fraction * n)) >= 1)
        raise BadData(f"{root}: no {what}: {found} images in {len(classes)} class folders, and with a share of "
                      f"{test_fraction:g} of each class as queries a class needs at least {need} images to give "
                      f"{'a query' if split == 'test' else 'one to the database'}; add images, or give "
                      "root/train/<class>/ and root/test/<class>/ folders")
    return ImageList(samples, classes, transform, f"folder {root.name}")


def _class_dirs(path):
    try:
        dirs = sorted(p.name for p in Path(path).iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as err:
        raise unreadable(path, err) from None
    if not dirs:
        raise DatasetNotFound(f"no class folders in {path}: expected {path}/<class>/<image>")
    return dirs


def _images(path):
    return list_images(path)  # hidden files and macOS ._* files are not images


__all__ = ["image_folder"]
