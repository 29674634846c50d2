"""Real fine-grained datasets under the retrieval protocol of ExchNet and FCAENet:
the official train split is the database, the official test split the queries.

| name      | classes | database | queries | source layout                                   |
|-----------|---------|----------|---------|-------------------------------------------------|
| cub       | 200     | 5,994    | 5,794   | CUB_200_2011/{images,images.txt,train_test_split.txt,image_class_labels.txt} |
| aircraft  | 100     | 6,667    | 3,333   | torchvision FGVCAircraft, variants, trainval/test |
| food101   | 101     | 75,750   | 25,250  | torchvision Food101                             |
| nabirds   | 555     | 23,929   | 24,633  | nabirds/{images,images.txt,train_test_split.txt,image_class_labels.txt} |
| vegfru    | 292     | 29,200   | 116,931 | vegfru_list/vegfru_{train,test}.txt + image folders |
| dogs      | 120     | 12,000   | 8,580   | Images/<breed>/*.jpg + train_list.mat, test_list.mat |
| folder    | any     |          |         | root/train/<class>/*, root/test/<class>/*, or root/<class>/* split by a seed |

Every dataset checks at construction that its files are where they should be, and says what
to put where when they are not; an image that cannot be decoded raises an error naming it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadData, BadOption
from .download import download_and_extract
from .images import BadImageError, check_images, open_image

SPLITS = ("train", "test")
TRAIN_HINT = ("Fix or remove the file; list every bad file with `python -m fgh_tutorial verify --data ROOT`, or "
              "leave them out with --on-bad-image skip")


class DatasetNotFound(BadData, FileNotFoundError):
    """A dataset's files are not where they should be; the message says what to put where."""


class ImageList:
    """A torch-style Dataset over (path, label) pairs: ``[i] -> (transform(image), label)``.
    Images are decoded by ``images.open_image``; ``skipped`` lists (path, reason) of the files
    left out by :meth:`drop_bad_images` or :meth:`exclude`. ``hint``: what the error of a file that
    does not decode advises (the options of the command that reads it)."""

    def __init__(self, samples, classes, transform=None, name="dataset", hint: str = TRAIN_HINT):
        self.samples = [(Path(p), int(y)) for p, y in samples]
        self.classes = list(classes)
        self.targets = np.array([y for _, y in self.samples], dtype=np.int64)
        self.transform, self.name, self.hint = transform, name, hint
        self.skipped = []

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        try:
            image = open_image(path)
        except (BadImageError, OSError) as err:
            raise BadImageError(f"{self.name}: {err}. {getattr(self, 'hint', TRAIN_HINT)}") from None
        return (self.transform(image) if self.transform else image), label

    def verify_images(self, progress: bool = True) -> list[Path]:
        """Fully decode every image once; returns the paths that fail (empty when all are good)."""
        return [p for p, _ in check_images([p for p, _ in self.samples], progress, f"verifying {self.name}")]

    def drop_bad_images(self, progress: bool = True) -> list:
        """Decode every image and leave out those that fail; returns their (path, reason)."""
        bad = check_images([p for p, _ in self.samples], progress, f"checking {self.name}")
        self._keep({p for p, _ in bad}, dict(bad))
        return bad

    def exclude(self, paths, reason: str = "left out when the run was trained") -> None:
        """Leave out ``paths`` (as a run trained with ``on_bad_image="skip"`` did)."""
        self._keep({Path(p) for p in paths}, {}, reason)

    def _keep(self, drop, reasons, default=""):
        gone = [(p, reasons.get(p, default)) for p, _ in self.samples if p in drop]
        self.samples = [(p, y) for p, y in self.samples if p not in drop]
        self.targets = np.array([y for _, y in self.samples], dtype=np.int64)
        self.skipped += gone


# ---------------------------------------------------------------- helpers
def _check_split(split):
    if split not in SPLITS:
        raise BadOption(f"split must be 'train' (database) or 'test' (queries), got {split!r}")


def _require(paths, dataset, hint):
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise DatasetNotFound(f"{dataset}: missing {', '.join(missing[:3])}{more}. {hint}")


def _read_table(path):
    """Whitespace-separated text file -> list of token lists (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        return [line.split() for line in f if line.strip()]


def _find_root(root, marker):
    """``root`` or the one folder inside it that holds ``marker``."""
    root = Path(root).expanduser()
    if (root / marker).exists():
        return root
    inner = [p for p in root.glob(f"*/{marker}")]
    return inner[0].parent if len(inner) == 1 else root


# ---------------------------------------------------------------- CUB and NABirds (same format)
CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz"
CUB_MD5 = "97eceeb196236b17998738112f37df78"


def _caltech_layout(root, split, transform, name, hint):
    _check_split(split)
    lists = ["images.txt", "image_class_labels.txt", "train_test_split.txt"]
    _require([root / f for f in lists], name, hint)
    paths = dict(_read_table(root / "images.txt"))
    raw = {i: int(c) for i, c in _read_table(root / "image_class_labels.txt")}
    is_train = {i: t == "1" for i, t in _read_table(root / "train_test_split.txt")}
    class_ids = sorted(set(raw.values()))  # NABirds ids are not contiguous
    index = {c: k for k, c in enumerate(class_ids)}
    names = _class_names(root / "classes.txt", class_ids)
    keep = [i for i in paths if is_train[i] == (split == "train")]
    samples = [(root / "images" / paths[i], index[raw[i]]) for i in keep]
    _require([p for p, _ in samples], name, hint)
    ds = ImageList(samples, names, transform, name)
    ds.image_ids = keep
    return ds


def _class_names(path, class_ids):
    if not Path(path).exists():
        return [str(c) for c in class_ids]
    table = {int(row[0]): " ".join(row[1:]) for row in _read_table(path)}
    return [table.get(c, str(c)) for c in class_ids]


def _fetch(name, root) -> str:
    """How to download a dataset, for a user of the library and of the command line alike."""
    return (f"or fetch it once with: python -c \"from fgh_tutorial.data import load_dataset; "
            f"load_dataset('{name}', '{root}', download=True)\"")


def cub200(root, split="train", transform=None, download=False) -> ImageList:
    """CUB-200-2011. With bounding boxes (``.boxes``: image id -> x, y, w, h) and part
    locations (``.parts``: image id -> {part id: (x, y)} of visible parts) when present."""
    if download:
        download_and_extract(CUB_URL, root, "CUB_200_2011.tgz", CUB_MD5)
    base = _find_root(root, "images.txt")
    hint = (f"Put the extracted CUB_200_2011 folder under {root} (images/, images.txt, "
            f"image_class_labels.txt, train_test_split.txt), {_fetch('cub', root)} ({CUB_URL}).")
    ds = _caltech_layout(base, split, transform, "CUB-200-2011", hint)
    if (base / "bounding_boxes.txt").exists():
        ds.boxes = {r[0]: tuple(map(float, r[1:5])) for r in _read_table(base / "bounding_boxes.txt")}
    if (base / "parts" / "part_locs.txt").exists():
        ds.parts = {}
        for img, part, x, y, visible in _read_table(base / "parts" / "part_locs.txt"):
            if visible == "1":
                ds.parts.setdefault(img, {})[int(part)] = (float(x), float(y))
    return ds


def nabirds(root, split="train", transform=None) -> ImageList:
    """NABirds (555 visual categories); its download needs the terms of use accepted."""
    base = _find_root(root, "images.txt")
    hint = ("NABirds is downloaded by hand after accepting its terms at https://dl.allaboutbirds.org/nabirds; "
            f"extract it so that {Path(root) / 'images.txt'} and {Path(root) / 'images'} exist.")
    return _caltech_layout(base, split, transform, "NABirds", hint)


# ---------------------------------------------------------------- VegFru
def vegfru(root, split="train", transform=None) -> ImageList:
    """VegFru (292 classes): vegfru_list/vegfru_{train,test}.txt with lines 'relative/path.jpg label'."""
    _check_split(split)
    root = Path(root).expanduser()
    listing = root / "vegfru_list" / f"vegfru_{split}.txt"
    hint = (f"Download VegFru from https://github.com/ustc-vim/vegfru and extract it under {root} "
            "(vegfru_list/, veg200_images/, fru92_images/).")
    _require([listing], "VegFru", hint)
    rows = _read_table(listing)
    samples = [(root / p, int(y)) for p, y in rows]
    _require([p for p, _ in samples], "VegFru", hint)
    n = max((y for _, y in samples), default=-1) + 1
    return ImageList(samples, [str(c) for c in range(n)], transform, "VegFru")


# ---------------------------------------------------------------- Stanford Dogs
DOGS_URLS = {"images.tar": "http://vision.stanford.edu/aditya86/ImageNetDogs/images.tar",
             "lists.tar": "http://vision.stanford.edu/aditya86/ImageNetDogs/lists.tar"}


def stanford_dogs(root, split="train", transform=None, download=False) -> ImageList:
    """Stanford Dogs (120 breeds): Images/<breed>/*.jpg with train_list.mat / test_list.mat.
    The source publishes no checksums, so a download is checked by unpacking only."""
    from scipy.io import loadmat

    _check_split(split)
    root = Path(root).expanduser()
    if download:
        for name, url in DOGS_URLS.items():
            download_and_extract(url, root, name)
    listing = root / f"{split}_list.mat"
    hint = (f"Put Images/ (images.tar) and train_list.mat, test_list.mat (lists.tar) from "
            f"http://vision.stanford.edu/aditya86/ImageNetDogs/ in {root}, {_fetch('dogs', root)}.")
    _require([listing, root / "Images"], "Stanford Dogs", hint)
    mat = loadmat(listing)
    files = [str(np.ravel(f)[0]) for f in mat["file_list"].ravel()]
    labels = [int(y) - 1 for y in np.ravel(mat["labels"])]
    samples = [(root / "Images" / f, y) for f, y in zip(files, labels)]
    _require([p for p, _ in samples], "Stanford Dogs", hint)
    folder = {y: f.split("/")[0] for f, y in zip(files, labels)}  # n02085620-Chihuahua
    names = [folder[y].split("-", 1)[-1] for y in sorted(folder)]
    return ImageList(samples, names, transform, "Stanford Dogs")


# ---------------------------------------------------------------- torchvision datasets
def fgvc_aircraft(root, split="train", transform=None, download=False):
    """FGVC-Aircraft, 100 variants: database = trainval (6,667), queries = test (3,333)."""
    from torchvision.datasets import FGVCAircraft

    _check_split(split)
    hint = f"Expected {Path(root) / 'fgvc-aircraft-2013b'}; {_fetch('aircraft', root)}."
    try:
        ds = FGVCAircraft(str(root), split="trainval" if split == "train" else "test",
                          annotation_level="variant", download=download)
    except (RuntimeError, FileNotFoundError) as err:
        raise DatasetNotFound(f"FGVC-Aircraft: {err} {hint}") from err
    _require(ds._image_files, "FGVC-Aircraft", hint)
    return ImageList(zip(ds._image_files, ds._labels), ds.classes, transform, "FGVC-Aircraft")  # decoded by open_image


def food101(root, split="train", transform=None, download=False):
    """Food-101: database = train (75,750), queries = test (25,250)."""
    from torchvision.datasets import Food101

    _check_split(split)
    hint = f"Expected {Path(root) / 'food-101'} (meta/, images/); {_fetch('food101', root)}."
    try:
        ds = Food101(str(root), split=split, download=download)
    except (RuntimeError, FileNotFoundError) as err:
        raise DatasetNotFound(f"Food-101: {err} {hint}") from err
    _require(ds._image_files, "Food-101", hint)
    return ImageList(zip(ds._image_files, ds._labels), ds.classes, transform, "Food-101")  # decoded by open_image


from .folder import image_folder  # noqa: E402 - the user's folder builds on ImageList above

LOADERS = {"cub": cub200, "aircraft": fgvc_aircraft, "food101": food101, "nabirds": nabirds,
           "vegfru": vegfru, "dogs": stanford_dogs, "folder": image_folder}


def load_dataset(name: str, root, split: str = "train", transform=None, **kwargs):
    """A real dataset by name (``LOADERS``) and split ('train' = database, 'test' = queries)."""
    if name not in LOADERS:
        raise BadOption(f"unknown dataset {name!r}; choose one of {sorted(LOADERS)} (or 'synthetic')")
    return LOADERS[name](root, split, transform, **kwargs)
