"""The mini-batches of one training epoch of the asymmetric loop, from either kind of data:

- a tensor (SynthBirds images, or cached backbone features in frozen mode): sliced and
  augmented (random flip, optional shift; features are not augmented) in the main process, the
  generator's draws in the same order as ever, so the course's numbers do not move;
- an image Dataset: the main process draws the *plan* (the batches' database rows, their ESRL
  positives, one augmentation seed per image) from the run's generator, and the worker processes
  of ``data.loader.TrainLoader`` decode, resize, crop and flip; the batches do not depend on the
  number of workers.

- cached maps (``--train-top``, ``stage_maps.MapViews``): the main process reads the batch's rows,
  for each image its plain or its flipped map, drawn from the run's generator.

Each batch is (positions in the sample, x, x_pos): x_pos holds the ESRL positives drawn from the
whole training set (``positives.DatasetPositives``), or None.
"""
from __future__ import annotations

import torch

from ..data import stack
from ..data.loader import TrainLoader
from ..data.transforms import augment


def train_loader(images, cfg, device, size: int | None = None) -> TrainLoader:
    """The loader of an image Dataset at its own image size (that of its first item)."""
    return TrainLoader(images, size or stack(images, [0]).shape[-1], device, cfg.workers)


def _augment(x, g, max_shift):
    return augment(x, g, max_shift) if x.ndim == 4 else x  # features (frozen mode) are not augmented


def _tensor_batches(images, order, starts, sample, cfg, g, device, draw):
    for s in starts:
        pos = order[s:s + cfg.batch_size]
        idx = sample[pos].cpu()
        x = _augment(stack(images, idx), g, cfg.max_shift).to(device, non_blocking=True)
        x_pos = None
        if draw is not None:
            x_pos = _augment(stack(images, draw(idx, g)), g, cfg.max_shift).to(device, non_blocking=True)
        yield pos, x, x_pos


def _view_batches(views, order, starts, sample, cfg, g, device, draw):
    for s in starts:
        pos = order[s:s + cfg.batch_size]
        idx = sample[pos].cpu()
        x_pos = None if draw is None else views.augmented_batch(draw(idx, g), g).to(device, non_blocking=True)
        yield pos, views.augmented_batch(idx, g).to(device, non_blocking=True), x_pos


def _loader_batches(loader: TrainLoader, order, starts, sample, cfg, g, device, draw):
    seed = int(torch.randint(0, 2 ** 62, (1,), generator=g))  # item k of the epoch is augmented from seed + k
    plan, positions, k = [], [], seed
    for s in starts:
        pos = order[s:s + cfg.batch_size]
        idx = sample[pos].cpu()
        items = idx.tolist() + ([] if draw is None else draw(idx, g).tolist())
        plan.append([(i, k + j) for j, i in enumerate(items)])
        positions.append(pos)
        k += len(items)
    for pos, x in zip(positions, loader.batches(plan, device)):
        yield pos, x[:len(pos)], (None if draw is None else x[len(pos):])


def has_views(images) -> bool:
    """Whether ``images`` draws its own augmented views (cached maps, ``stage_maps.MapViews``)."""
    return hasattr(images, "augmented_batch")


def epoch_batches(images, order, sample, cfg, g, device, draw=None):
    """(positions, x, x_pos) of each full batch of ``order`` (shuffled positions in ``sample``,
    the sampled database rows); ``images`` is a tensor, cached maps, a Dataset or its ``TrainLoader``."""
    starts = range(0, max(1, len(order) - cfg.batch_size + 1), cfg.batch_size)
    if isinstance(images, torch.Tensor):
        return _tensor_batches(images, order, starts, sample, cfg, g, device, draw)
    if has_views(images):
        return _view_batches(images, order, starts, sample, cfg, g, device, draw)
    loader = images if isinstance(images, TrainLoader) else train_loader(images, cfg, device)
    return _loader_batches(loader, order, starts, sample, cfg, g, device, draw)
