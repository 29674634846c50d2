"""The input pipeline for image Datasets: a torch DataLoader whose worker processes decode,
resize and augment, with pinned memory on CUDA, persistent workers and prefetching, so that a GPU
never waits on one CPU core decoding JPEGs.

Training augmentation, as fine-grained hashing papers do it (512 -> 448 at 448 px):

    resize the short side to R = round(S * 8 / 7),  random S x S crop,  horizontal flip (p = 1/2),
    then ImageNet normalisation  x' = (x - mean) / std.

Encoding is deterministic: the Dataset's own transform (``default_transform``: short side to S,
centre S x S crop).

Reproducibility: the main process draws a *plan* from the run's generator, the batches as lists
of (dataset index, seed) pairs; a worker applies the random crop and flip of each item from its
own seed. The batches are therefore the same with 0, 1 or 16 workers and in any order of
completion (``TrainLoader.batches``).
"""
from __future__ import annotations

import copy
import os

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from ..errors import BadOption
from .transforms import IMAGENET_MEAN, IMAGENET_STD

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
    """Yields the batches of the current plan (lists of (index, seed) items), set before each pass."""

    def __init__(self):
        self.plan = []

    def __iter__(self):
        return iter(list(self.plan))

    def __len__(self):
        return len(self.plan)


def _loader_kwargs(workers, device, prefetch):
    workers = default_workers() if workers is None else int(workers)
    if workers < 0:
        raise BadOption(f"workers must be >= 0, got {workers}")
    extra = {"persistent_workers": True, "prefetch_factor": prefetch} if workers > 0 else {}
    return {"num_workers": workers, "pin_memory": torch.device(device).type == "cuda", **extra}


class TrainLoader:
    """Augmented training batches of a Dataset, decoded in worker processes.

    ``batches(plan, device)`` yields one tensor (B, 3, S, S) per batch of the plan, on
    ``device`` (copied from pinned memory without blocking on CUDA)."""

    def __init__(self, dataset, image_size: int, device="cpu", workers: int | None = None, prefetch: int = 4):
        self.sampler = PlanSampler()
        self.transform = TrainTransform(image_size)
        self.loader = DataLoader(PlanDataset(dataset, self.transform), batch_sampler=self.sampler,
                                 **_loader_kwargs(workers, device, prefetch))
        self.workers = self.loader.num_workers

    def batches(self, plan, device="cpu"):
        self.sampler.plan = [[(int(i), int(s)) for i, s in batch] for batch in plan]
        for x in self.loader:
            yield x.to(device, non_blocking=True)


def encode_loader(dataset, batch_size: int = 256, workers: int | None = None, device="cpu", prefetch: int = 2):
    """Batches (x, y) of a Dataset in order, through its own deterministic transform, decoded in
    worker processes: for encoding and feature extraction."""
    kwargs = _loader_kwargs(workers, device, prefetch)
    kwargs.pop("persistent_workers", None)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, **kwargs)


__all__ = ["PlanDataset", "PlanSampler", "RESIZE_RATIO", "TrainLoader", "TrainTransform", "default_workers",
           "encode_loader", "image_files", "raw_view", "train_resize"]
