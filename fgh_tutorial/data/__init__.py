"""Data: the embedded SynthBirds set, real fine-grained datasets and a user's folder, image files
(decoding, listing, verifying), downloads, fingerprints of a split, image transforms, the splits of a
profile (``splits``) and the training batches of tensors and Datasets (``loader``). A bottom layer
beside ``retrieval``: imports only ``errors.py`` and ``files.py`` of the package. This file only
re-exports.
"""
from .images import BadImageError, check_policy, list_images, open_image
from .real import LOADERS, DatasetNotFound, ImageList, load_dataset
from .splits import course_splits, dataset_labels, skipped_images, stack, subset
from .synthetic import CLASSES, MASK_NAMES, NUM_CLASSES, PART_NAMES, SynthBirds, class_name
from .transforms import augment, default_transform, denormalize, normalize_batch

__all__ = ["augment", "BadImageError", "CLASSES", "check_policy", "DatasetNotFound", "ImageList", "LOADERS", "MASK_NAMES", "NUM_CLASSES",
           "PART_NAMES", "SynthBirds", "class_name", "course_splits", "dataset_labels", "stack", "subset", "default_transform",
           "denormalize", "load_dataset", "list_images", "normalize_batch", "open_image", "skipped_images"]
