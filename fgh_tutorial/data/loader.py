"""Training batches: the one place that turns (a run's training images, a batch plan) into
batches, whatever the images are, and the DataLoader pipeline of image Datasets.

A *batch source* has ``batches(plan, g, positives=None)``: ``plan`` yields the batches' rows (index
tensors), ``g`` is the run's generator, ``positives(idx, g)`` (ESRL's, optional) draws a positive
row per anchor; it yields ``(idx, x, x_pos)`` on the source's device, ``x_pos`` None without
positives. ``batch_source(images, ...)`` picks the source:

    InMemory     a tensor (or a Dataset read through its own transform in the main process):
                 rows sliced, then flipped and shifted from ``g`` (``transforms.augment``; 2-D
                 features are not augmented), batch by batch, as the plan is read;
    Decoded      a Dataset read through its own transform in DataLoader workers (worker seeds
                 drawn from ``g`` as torch's DataLoader draws them), flipped and shifted from
                 ``g`` in the main process;
    TrainLoader  a Dataset decoded and augmented in worker processes from a plan of
                 (row, seed) items drawn from ``g`` (below);
    any object with its own ``batches`` (cached maps of frozen stages, ``training/stage_maps.py``).

TrainLoader's augmentation, as fine-grained hashing papers do it (512 -> 448 at 448 px):

    resize the short side to R = round(S * 8 / 7),  random S x S crop,  horizontal flip (p = 1/2),
    then ImageNet normalisation  x' = (x - mean) / std.

Encoding is deterministic: the Dataset's own transform (``default_transform``: short side to S,
centre S x S crop).

Reproducibility: the main process draws a *plan* from the run's generator, the batches as lists
of (dataset index, seed) pairs; a worker applies the random crop and flip of each item from its
own seed. The batches are therefore the same with 0, 1 or 16 workers and in any order of
completion (``TrainLoader.decode``).
"""
from __future__ import annotations

import collections
import copy
import os

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import BadOption
from .splits import stack
from .transforms import IMAGENET_MEAN, IMAGENET_STD, augment

RESIZE_RATIO = 8 / 7  # 512 / 448 and 256 / 224: the short side before the random crop


def default_workers() -> int:
    """Worker processes for decoding: one core is left to the training process, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(0, min(8, cores - 1))


def train_resize(image_size: int) -> int:
    """R, the short side before the random S x S crop."""
    return int(round(image_size * RESIZE_RATIO))


class TrainTransform:
    """Resize (short side R), random S x S crop and horizontal flip drawn from ``seed``, then
    tensor and normalisation. Takes PIL images, or tensors (3, H, W) already normalised."""

    def __init__(self, image_size: int, resize: int | None = None, flip: bool = True):
        if image_size < 1:
            raise BadOption(f"image_size must be positive, got {image_size}")
        self.size, self.resize, self.flip = int(image_size), int(resize or train_resize(image_size)), flip
        if self.resize < self.size:
            raise BadOption(f"resize ({self.resize}) must be at least image_size ({self.size})")

    def __call__(self, image, seed: int) -> torch.Tensor:
        from torchvision.transforms import functional as TF

        g = torch.Generator().manual_seed(int(seed))
        is_tensor = isinstance(image, torch.Tensor)
        image = TF.resize(image, self.resize, antialias=True)
        h, w = image.shape[-2:] if is_tensor else (image.height, image.width)
        top = int(torch.randint(0, h - self.size + 1, (1,), generator=g))
        left = int(torch.randint(0, w - self.size + 1, (1,), generator=g))
        image = TF.crop(image, top, left, self.size, self.size)
        if self.flip and bool(torch.rand(1, generator=g) < 0.5):
            image = TF.hflip(image)
        if is_tensor:
            return image
        return TF.normalize(TF.to_tensor(image), IMAGENET_MEAN, IMAGENET_STD)


def raw_view(dataset):
    """(base dataset that returns undecorated images, index map or None): Subsets unwrapped,
    and the base's ``transform`` removed (on a shallow copy) so that workers see PIL images."""
    index = None
    while isinstance(dataset, Subset):
        outer = [int(i) for i in dataset.indices]
        index = outer if index is None else [outer[i] for i in index]
        dataset = dataset.dataset
    if getattr(dataset, "transform", None) is not None:
        dataset = copy.copy(dataset)
        dataset.transform = None
    return dataset, index


def image_files(dataset) -> list | None:
    """The image files of a Dataset, in its order (Subsets followed), or None when it keeps none."""
    base, index = raw_view(dataset)
    if hasattr(base, "samples"):  # ImageList, torchvision ImageFolder
        files = [str(p) for p, _ in base.samples]
    elif hasattr(base, "_image_files"):  # torchvision FGVCAircraft, Food101, ...
        files = [str(p) for p in base._image_files]
    else:
        return None
    return files if index is None else [files[i] for i in index]


class PlanDataset(Dataset):
    """Items (index, seed) -> the augmented image ``index`` of ``dataset``."""

    def __init__(self, dataset, transform: TrainTransform):
        self.base, self.index = raw_view(dataset)
        self.transform = transform

    def __len__(self):
        return len(self.index) if self.index is not None else len(self.base)

    def __getitem__(self, item):
        i, seed = item
        image = self.base[self.index[i] if self.index is not None else i][0]
        return self.transform(image, seed)


class PlanSampler(Sampler):
    """Yields the batches of the current plan (lists of (index, seed) items, or an iterable of index
    batches read as the DataLoader asks for them), set before each pass; ``given`` keeps the batches
    handed out and not yet collected."""

    def __init__(self, plan=()):
        self.plan, self.given = plan, collections.deque()

    def __iter__(self):
        for batch in self.plan:
            self.given.append(batch)
            yield batch

    def __len__(self):
        return len(self.plan)


def _loader_kwargs(workers, device, prefetch):
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise BadOption(f"workers must be >= 0, got {workers}")
    extra = {"persistent_workers": True, "prefetch_factor": prefetch} if workers > 0 else {}
    return {"num_workers": workers, "pin_memory": torch.device(device).type == "cuda", **extra}


class TrainLoader:
    """Augmented training batches of a Dataset, decoded in worker processes (random crop and flip
    of each item from its own seed).

    ``decode(plan, device)`` yields one tensor (B, 3, S, S) per batch of (index, seed) items, on
    ``device`` (copied from pinned memory without blocking on CUDA); ``batches`` is the batch
    source: the epoch's seed and the whole plan (rows, then their positives) drawn from ``g`` first."""

    def __init__(self, dataset, image_size: int, device="cpu", workers: int | None = None, prefetch: int = 4):
        self.sampler, self.device = PlanSampler(), device
        self.transform = TrainTransform(image_size)
        self.loader = DataLoader(PlanDataset(dataset, self.transform), batch_sampler=self.sampler,
                                 **_loader_kwargs(workers, device, prefetch))
        self.workers = self.loader.num_workers

    def decode(self, plan, device="cpu"):
        self.sampler.plan = [[(int(i), int(s)) for i, s in batch] for batch in plan]
        self.sampler.given.clear()
        for x in self.loader:
            yield x.to(device, non_blocking=True)

    def batches(self, plan, g: torch.Generator, positives=None):
        seed = int(torch.randint(0, 2 ** 62, (1,), generator=g))  # item k of the epoch is augmented from seed + k
        items, rows, k = [], [], seed
        for idx in plan:
            both = idx.tolist() + ([] if positives is None else positives(idx, g).tolist())
            items.append([(i, k + j) for j, i in enumerate(both)])
            rows.append(idx)
            k += len(both)
        for idx, x in zip(rows, self.decode(items, self.device)):
            yield idx, x[:len(idx)], (None if positives is None else x[len(idx):])


class InMemory:
    """Rows of a tensor (or of a Dataset through its own transform, in the main process), augmented
    from the run's generator batch by batch: flip and shift of the anchors, then the positives' draw
    and their flip and shift."""

    def __init__(self, images, device="cpu", max_shift: float = 0.0):
        self.images, self.device, self.max_shift = images, device, max_shift

    def _augmented(self, idx, g):
        x = stack(self.images, idx)
        x = augment(x, g, self.max_shift) if x.ndim == 4 else x  # features (frozen mode) are not augmented
        return x.to(self.device, non_blocking=True)

    def batches(self, plan, g: torch.Generator, positives=None):
        for idx in plan:
            x = self._augmented(idx, g)
            yield idx, x, (None if positives is None else self._augmented(positives(idx, g), g))


class Decoded(InMemory):
    """A Dataset of (image, label) read through its own transform by ``workers`` DataLoader workers
    (a loader per pass, its worker seed drawn from ``g`` before the plan is read, as torch's
    DataLoader draws it), flipped and shifted from ``g`` in the main process."""

    def __init__(self, dataset, device="cpu", max_shift: float = 0.0, workers: int = 0):
        super().__init__(dataset, device, max_shift)
        self.workers = workers

    def batches(self, plan, g: torch.Generator, positives=None):
        if positives is not None:
            raise BadOption("a Dataset read through its own transform draws no positives: use a TrainLoader")
        sampler = PlanSampler(plan)
        for x, _ in DataLoader(self.images, batch_sampler=sampler, generator=g, num_workers=self.workers):
            x = augment(x, g, self.max_shift)
            yield sampler.given.popleft(), x.to(self.device), None


def batch_source(images, device="cpu", max_shift: float = 0.0, workers: int | None = None, decode: str = "plan",
                 size: int | None = None):
    """The batch source of a run's training images: ``images`` itself when it has ``batches``, a
    tensor's ``InMemory``; a Dataset's ``TrainLoader`` at ``size`` (default: its first image's)
    when ``decode`` is "plan", its ``Decoded`` when "workers", its ``InMemory`` when "main"."""
    if hasattr(images, "batches"):
        return images
    if isinstance(images, torch.Tensor) or decode == "main":
        return InMemory(images, device, max_shift)
    if decode == "workers":
        return Decoded(images, device, max_shift, workers or 0)
    return TrainLoader(images, size or stack(images, [0]).shape[-1], device, workers)


def encode_loader(dataset, batch_size: int = 256, workers: int | None = None, device="cpu", prefetch: int = 2):
    """Batches (x, y) of a Dataset in order, through its own deterministic transform, decoded in
    worker processes: for encoding and feature extraction."""
    kwargs = _loader_kwargs(workers, device, prefetch)
    kwargs.pop("persistent_workers", None)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, **kwargs)


__all__ = ["Decoded", "InMemory", "PlanDataset", "PlanSampler", "RESIZE_RATIO", "TrainLoader", "TrainTransform", "batch_source",
           "default_workers", "encode_loader", "image_files", "raw_view", "train_resize"]
