"""The cache of ``--train-top K``: the output maps of the frozen bottom stages, computed once.

One float16 array in a memory-mapped ``.npy`` file in the run folder, rows in this order:

    train (the database)    its images as encoded (short side S, centre crop)
    train, flipped          the same images flipped horizontally: training draws one of the two
                            views per image and epoch, so it keeps the flip augmentation
    val, test               their images as encoded

The file's name carries a digest of its key: the fingerprint of the frozen mode's features
(``frozen.fingerprint``: image paths, sizes, modification times, the transform, and the weights of
the whole backbone), the number of frozen stages and the layout. A file of that name is current
(it is written to a temporary file, then renamed); when the data or the weights change the key
changes, the maps are computed again and the old file is deleted. Before the file is built its
size is printed, and a disk without room for it is an error.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .frozen import fingerprint, split_batches as _batches

MAPS_PREFIX = "top_maps"
FORMAT = 1
SPARE_BYTES = 64 << 20  # left free on the disk beside the cache


def layout(splits: dict) -> dict:
    """{(split, flipped): (first row, rows)} of the cache: train, train flipped, then the others."""
    order = [("train", False), ("train", True)] + [(s, False) for s in splits if s != "train"]
    rows, out = 0, {}
    for split, flipped in order:
        n = len(splits[split][0])
        out[(split, flipped)] = (rows, n)
        rows += n
    return out


def maps_path(run_dir, backbone, splits: dict, frozen_stages: int) -> Path | None:
    """The cache file of these splits under this backbone cut after ``frozen_stages`` stages
    (None when a split's data has no fingerprint: then nothing is cached)."""
    key = fingerprint(backbone, splits)
    if key is None or run_dir is None:
        return None
    key += f";frozen_stages={frozen_stages};layout={sorted(layout(splits).items())};format={FORMAT}"
    return Path(run_dir) / f"{MAPS_PREFIX}.{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"


class StageMaps:
    """The cached maps of one run: ``views`` (the database with its flips), ``tensor`` and
    ``apply`` read them. The file is opened lazily in each process (a worker never gets a copy);
    ``array``: maps held in memory instead, when there is no run folder to cache them in."""

    def __init__(self, path, splits: dict, shape: tuple, array: np.ndarray | None = None):
        self.path, self.layout, self.shape = path and Path(path), layout(splits), tuple(shape)
        self.labels = {s: torch.as_tensor(np.asarray(y), dtype=torch.int64) for s, (_, y) in splits.items()}
        self._array, self._own = array, array is not None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            self._array = np.load(self.path, mmap_mode="r")
        return self._array

    def __getstate__(self):
        return {**self.__dict__, "_array": self._array if self._own else None}

    def rows(self, split: str, flipped: bool = False) -> np.ndarray:
        start, n = self.layout[(split, flipped)]
        return self.array[start:start + n]

    def tensor(self, split: str) -> torch.Tensor:
        """A split's maps in memory, float32."""
        return torch.from_numpy(np.asarray(self.rows(split), dtype=np.float32))

    def views(self, split: str = "train") -> "MapViews":
        return MapViews(self, split)

    @torch.no_grad()
    def apply(self, model, split: str, fn=None, batch_size: int = 256) -> torch.Tensor:
        """``fn(x)`` (default ``model(x)``, e.g. relaxed codes) of a split's maps, chunk by chunk,
        with ``model`` in eval mode on its device."""
        device, was_training = next(model.parameters()).device, model.training
        model.eval()
        rows, out = self.rows(split), []
        try:
            for s in range(0, len(rows), batch_size):
                x = torch.from_numpy(np.asarray(rows[s:s + batch_size], dtype=np.float32)).to(device)
                out.append((fn or model)(x).float().cpu())
        finally:
            model.train(was_training)
        return torch.cat(out)


class MapViews(torch.utils.data.Dataset):
    """The maps of one split as a Dataset of (map, label), and, for training batches,
    ``augmented_batch``: one view per image, the flipped one with probability 1/2 (drawn from the
    run's generator, as the flips of tensor images are); ``batches``: the maps as a batch source."""

    def __init__(self, maps: StageMaps, split: str):
        self.maps, self.split = maps, split
        self.flips = (split, True) in maps.layout

    def __len__(self):
        return self.maps.layout[(self.split, False)][1]

    def __getitem__(self, i):
        return torch.from_numpy(np.asarray(self.maps.rows(self.split)[int(i)], dtype=np.float32)), self.maps.labels[self.split][int(i)]

    def augmented_batch(self, idx, g: torch.Generator) -> torch.Tensor:
        idx = torch.as_tensor(idx).cpu().numpy()
        out = np.empty((len(idx), *self.maps.shape[1:]), np.float32)
        flip = (torch.rand(len(idx), generator=g) < 0.5).numpy() if self.flips else np.zeros(len(idx), bool)
        out[~flip] = self.maps.rows(self.split)[idx[~flip]]
        if flip.any():
            out[flip] = self.maps.rows(self.split, True)[idx[flip]]
        return torch.from_numpy(out)

    def batches(self, plan, g: torch.Generator, positives=None):
        """The batch source of the maps (``data.loader``): for each batch of the plan, the views of
        its positives (when drawn), then those of its rows."""
        for idx in plan:
            x_pos = None if positives is None else self.augmented_batch(positives(idx, g), g)
            yield idx, self.augmented_batch(idx, g), x_pos


# ---------------------------------------------------------------- building the cache
def _size(nbytes: int) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes >= 1e9 else f"{nbytes / 1e6:.1f} MB" if nbytes >= 1e5 else f"{nbytes / 1e3:.0f} kB"


def _check_space(path: Path, nbytes: int) -> None:
    free = shutil.disk_usage(path.parent).free
    if free < nbytes + SPARE_BYTES:
        raise OSError(f"the cache of the frozen stages' maps needs {_size(nbytes)} but {path.parent} has "
                      f"{_size(free)} free: free some space, train more stages (a larger --train-top), or "
                      "use a smaller --image-size")


@torch.no_grad()
def _fill(bottom, splits: dict, array, device, workers, progress: bool, batch_size: int = 64) -> None:
    """Run the frozen ``bottom`` stages over every split into ``array`` (the rows of ``layout``)."""
    places = layout(splits)
    with tqdm(total=len(array), desc="frozen stages' maps", unit="map", disable=not progress) as bar:
        for split, (data, _) in splits.items():
            at, twin = places[(split, False)][0], places.get((split, True), (None,))[0]
            for x in _batches(data, batch_size, workers, device):
                x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
                array[at:at + len(x)] = bottom(x).float().cpu().numpy()
                if twin is not None:
                    array[twin:twin + len(x)] = bottom(x.flip(3)).float().cpu().numpy()
                    twin += len(x)
                at += len(x)
                bar.update(len(x) * (1 if twin is None else 2))


@torch.no_grad()
def map_shape(bottom, splits: dict, device="cpu") -> tuple:
    """(rows, channels, height, width) of the cache of ``splits`` under the ``bottom`` stages."""
    first = next(_batches(splits["train"][0], 1, 0, device))
    return (sum(n for _, n in layout(splits).values()), *bottom.eval().to(device)(first.to(device)).shape[1:])


def build_maps(bottom, splits: dict, path: Path, device="cpu", workers: int | None = None,
               progress: bool = True) -> tuple:
    """The maps of the frozen ``bottom`` stages in the float16 file ``path``, written
    atomically (size printed and free space checked first); returns the array's shape."""
    device = torch.device(device)
    shape = map_shape(bottom, splits, device)
    nbytes = int(np.prod(shape)) * 2
    path.parent.mkdir(parents=True, exist_ok=True)
    _check_space(path, nbytes)
    print(f"caching the frozen stages' maps: {shape[0]} maps of {'x'.join(map(str, shape[1:]))}, float16, "
          f"{_size(nbytes)} in {path}", file=sys.stderr)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
        _fill(bottom, splits, array, device, workers, progress)
        array.flush()
        del array
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return shape


def cached_maps(bottom, backbone, splits: dict, frozen_stages: int, run_dir=None, device="cpu",
                workers: int | None = None, progress: bool = True) -> StageMaps:
    """The maps of the frozen ``bottom`` stages (the first ``frozen_stages`` of ``backbone``),
    read from the run folder's cache when its key matches, else computed into it; held in memory
    when there is no run folder or the data has no fingerprint."""
    path = maps_path(run_dir, backbone, splits, frozen_stages)
    if path is None:
        shape = map_shape(bottom, splits, device)
        array = np.empty(shape, np.float16)
        _fill(bottom, splits, array, torch.device(device), workers, progress)
        return StageMaps(None, splits, shape, array)
    expected = sum(n for _, n in layout(splits).values())
    try:
        stored = np.load(path, mmap_mode="r")
        if stored.dtype == np.float16 and stored.ndim == 4 and len(stored) == expected:
            return StageMaps(path, splits, stored.shape)
    except (OSError, ValueError):  # missing or unreadable: computed again
        pass
    shape = build_maps(bottom, splits, path, device, workers, progress)
    for old in path.parent.glob(f"{MAPS_PREFIX}.*.npy"):  # the caches of other data or weights
        if old != path:
            old.unlink(missing_ok=True)
    return StageMaps(path, splits, shape)


__all__ = ["MAPS_PREFIX", "MapViews", "StageMaps", "build_maps", "cached_maps", "layout", "map_shape", "maps_path"]
