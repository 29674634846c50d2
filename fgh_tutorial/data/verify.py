"""Checking a dataset's image files before training: ``python -m fgh_tutorial verify --data FOLDER``.

Every image is fully decoded the way training reads it (``images.open_image`` with its strict
checks), so truncated files, corrupt JPEG scan data, files that are not images and
decompression bombs are all found in one pass, each with its reason. A folder that cannot be
read, or that holds no image at all, is an error too: nothing was checked.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import BadData, BadOption, MissingFile
from .images import IMAGE_SUFFIXES, check_images, list_images
from .real import LOADERS, SPLITS, load_dataset


def dataset_files(root, dataset: str | None = None) -> list[Path]:
    """The image files of a dataset: every image under ``root`` (hidden and ``._*`` files left
    out) for a folder, or the files of both splits of a named dataset (``real.LOADERS``)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise MissingFile(f"--data {root}: no such folder" if not root.exists() else f"--data {root} is a file, not a folder")
    if dataset in (None, "folder"):
        return list_images(root, recursive=True)
    if dataset not in LOADERS:
        raise BadOption(f"unknown dataset {dataset!r}; choose one of {sorted(LOADERS)}")
    files = {}
    for split in SPLITS:
        ds = load_dataset(dataset, root, split)
        files.update((Path(p), None) for p, _ in ds.samples)
    return list(files)


def verify_data(root, dataset: str | None = None, progress: bool = True) -> tuple[int, list]:
    """(number of image files, [(path, reason) of each one that cannot be decoded])."""
    files = dataset_files(root, dataset)
    if not files:
        raise BadData(f"--data {root}: no image files ({', '.join(IMAGE_SUFFIXES)}) under it: nothing to verify")
    return len(files), check_images(files, progress, f"verifying {Path(root).name}")


__all__ = ["dataset_files", "verify_data"]
