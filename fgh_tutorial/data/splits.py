"""A split's data: the splits of a profile (``course_splits``: SynthBirds tensors, or a real
dataset's Datasets with a held-out validation share), the image files a split left out, a Dataset's
class ids, and rows of a split's data (``subset``, ``stack``) whether it is a tensor or a Dataset.
"""
from .images import check_policy
from .real import DatasetNotFound, load_dataset
from .synthetic import SynthBirds
from .transforms import default_transform


def course_splits(profile, progress: bool = False, on_bad_image: str = "fail", exclude=()) -> dict:
    """The splits of a profile as (data, labels) pairs: ``train`` (training images and the
    retrieval database), ``test`` (the queries) and ``val`` (validation queries for model
    selection, never the query split).

    SynthBirds: data are whole normalised tensors (val is its own split). A real dataset
    (``profile.dataset``, folder ``profile.data_root`` or $FGH_DATA): data are Datasets at the
    profile's image size; ``val`` holds out a seeded ``profile.val_fraction`` of the train split,
    and ``train`` is the rest.

    Bad image files of a real dataset: ``on_bad_image="fail"`` raises a ``BadImageError``
    naming the file when it is read; ``"skip"`` decodes every file first and leaves out those
    that fail (listed by :func:`skipped_images`); ``exclude`` leaves out the given paths
    without decoding (to rebuild the splits of a run trained with ``"skip"``).
    """
    if profile.dataset == "synthetic":
        sizes = {"train": profile.per_class, "test": profile.per_class_query, "val": profile.per_class_val}
        return {split: SynthBirds(split, n, profile.image_size, profile.seed).tensors(progress)
                for split, n in sizes.items()}
    return _real_splits(profile, check_policy(on_bad_image), exclude)


def _real_splits(profile, on_bad_image="fail", exclude=()) -> dict:
    import torch
    from torch.utils.data import Subset

    if not profile.data_root:
        raise DatasetNotFound(f"profile {profile.name!r} uses the {profile.dataset} dataset: set FGH_DATA "
                              "(or data_root) to its folder")
    transform = default_transform(profile.image_size)
    train = load_dataset(profile.dataset, profile.data_root, "train", transform)
    test = load_dataset(profile.dataset, profile.data_root, "test", transform)
    for ds in (train, test):
        if exclude:
            ds.exclude(exclude)
        if on_bad_image == "skip":
            ds.drop_bad_images(progress=False)
    labels = dataset_labels(train)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(profile.seed))
    n_val = int(round(profile.val_fraction * len(train)))
    val_idx, train_idx = order[:n_val].sort().values, order[n_val:].sort().values
    return {"train": (Subset(train, train_idx.tolist()), labels[train_idx]),
            "val": (Subset(train, val_idx.tolist()), labels[val_idx]),
            "test": (test, dataset_labels(test))}


def skipped_images(splits) -> list:
    """(path, reason) of every image file the splits left out, as strings."""
    found = {}
    for data, _ in (v for v in splits.values() if isinstance(v, tuple)):
        for path, reason in getattr(getattr(data, "dataset", data), "skipped", []):
            found[str(path)] = reason
    return sorted(found.items())


def dataset_labels(dataset):
    """The class ids of a dataset as a tensor, without decoding images where the dataset keeps
    them (``targets``, or torchvision's ``_labels``)."""
    import numpy as np
    import torch

    for name in ("targets", "_labels"):
        if hasattr(dataset, name):
            return torch.as_tensor(np.asarray(getattr(dataset, name)), dtype=torch.int64)
    return torch.as_tensor([int(y) for _, y in dataset], dtype=torch.int64)


def subset(data, index):
    """Rows ``index`` of a split's data: a tensor slice, or a ``Subset`` of a Dataset."""
    import torch

    if isinstance(data, torch.Tensor):
        return data[index]
    return torch.utils.data.Subset(data, [int(i) for i in index])


def stack(data, index):
    """Images ``index`` of a split's data as one tensor (for figures and attention maps)."""
    import torch

    if isinstance(data, torch.Tensor):
        return data[index]
    return torch.stack([data[int(i)][0] for i in index])


__all__ = ["course_splits", "dataset_labels", "skipped_images", "stack", "subset"]
