"""Datasets: the embedded SynthBirds set, real fine-grained datasets and a user's folder."""
from .real import LOADERS, DatasetNotFound, ImageList, load_dataset
from .synthetic import CLASSES, MASK_NAMES, NUM_CLASSES, PART_NAMES, SynthBirds, class_name
from .transforms import default_transform, denormalize, normalize_batch


def course_splits(profile, progress: bool = False) -> dict:
    """The SynthBirds splits of a profile as (images, labels) tensors: the database
    (``train``), the queries (``test``) and the validation queries (``val``)."""
    sizes = {"train": profile.per_class, "test": profile.per_class_query, "val": profile.per_class_val}
    return {split: SynthBirds(split, n, profile.image_size, profile.seed).tensors(progress)
            for split, n in sizes.items()}


__all__ = ["CLASSES", "DatasetNotFound", "ImageList", "LOADERS", "MASK_NAMES", "NUM_CLASSES", "PART_NAMES",
           "SynthBirds", "class_name", "course_splits", "default_transform", "denormalize", "load_dataset",
           "normalize_batch"]
