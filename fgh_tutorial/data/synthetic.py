"""SynthBirds: an embedded, offline fine-grained dataset with part masks.

Every "species" shares one body plan (body, head, wing, tail, legs) and differs from
the others only in four small local parts:

    beak colour (3) x eye ring (2) x wing-bar colour (3) x tail pattern (3) = 54 classes.

Body colour, background colour, clutter, pose, scale, position, lighting and noise are
drawn at random for every image, and the clutter re-uses the part colours, so the colour
histogram of an image says almost nothing about its class. Each image comes with boolean
masks of its parts (``PART_NAMES``) and of the whole bird: the ground truth that the
attention notebooks score against.

Images are deterministic functions of ``(seed, split, index)``, so any image can be drawn
on its own (random access, any number of workers) at any size.
"""
from __future__ import annotations

import colorsys
import itertools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import BadOption
from ..files import cache_dir
from .split_cache import read_split, renderer_digest, write_split
from .geometry import (BEAK, BELLY_PATCH, BODY, BREAST_BARS, BREAST_SPOTS, CROWN_STRIPE, EYE_REGION, EYE_RING, HEAD,
                       LEGS, PUPIL, RUMP_BAND, TAIL, TAIL_BARS, TAIL_SPOTS, WING, WING_BAR, Pose)

PART_NAMES = ("beak", "eye", "wing", "tail")
MASK_NAMES = PART_NAMES + ("bird",)
SPLITS = {"train": 0, "test": 1, "val": 2}

BEAK_COLOURS = {"yellow": (235, 200, 40), "black": (25, 25, 25), "red": (215, 60, 30)}
EYE_RINGS = ("none", "white")
WING_BARS = {"white": (245, 245, 245), "red": (215, 60, 30), "blue": (40, 90, 220)}
TAIL_PATTERNS = ("plain", "barred", "spotted")
ATTRIBUTES = {
    "beak": tuple(BEAK_COLOURS),
    "eye": EYE_RINGS,
    "wing": tuple(WING_BARS),
    "tail": TAIL_PATTERNS,
}
CLASSES = tuple(itertools.product(*ATTRIBUTES.values()))
NUM_CLASSES = len(CLASSES)
# Colours that clutter may take: every part colour appears in the background too.
CLUTTER_COLOURS = tuple(BEAK_COLOURS.values()) + tuple(WING_BARS.values()) + ((245, 245, 245),)


def class_name(label: int) -> str:
    """Readable name of a class, e.g. ``'yellow beak, white ring, red bar, barred tail'``."""
    beak, eye, wing, tail = CLASSES[label]
    ring = "no ring" if eye == "none" else f"{eye} ring"
    return f"{beak} beak, {ring}, {wing} bar, {tail} tail"


def attribute_differences(a: int, b: int) -> list[str]:
    """Names of the parts in which classes ``a`` and ``b`` differ."""
    return [p for p, x, y in zip(PART_NAMES, CLASSES[a], CLASSES[b]) if x != y]


def _random_colour(rng, sat=(0.25, 0.85), val=(0.35, 0.95)):
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return int(255 * r), int(255 * g), int(255 * b)


def _shade(colour, factor):
    return tuple(int(min(255, max(0, c * factor))) for c in colour)


# ---------------------------------------------------------------- rendering
def _draw_clutter(draw, rng, size):
    for _ in range(rng.integers(6, 14)):
        colour = (CLUTTER_COLOURS[rng.integers(len(CLUTTER_COLOURS))]
                  if rng.random() < 0.5 else _random_colour(rng))
        x, y = rng.uniform(0, size, 2)
        w, h = rng.uniform(0.03, 0.18, 2) * size
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse([x - w, y - h, x + w, y + h], fill=colour)
        elif kind == 1:
            draw.rectangle([x - w, y - h / 3, x + w, y + h / 3], fill=colour)
        else:
            x2, y2 = rng.uniform(0, size, 2)
            draw.line([x, y, x2, y2], fill=colour, width=max(1, int(size * 0.02)))


def _draw_second_cues(draw, pose, label):
    """The redundant option: every attribute shown a second time, far from its part (geometry.py)."""
    beak, eye, wing, tail = CLASSES[label]
    draw.polygon(pose.apply(RUMP_BAND), fill=BEAK_COLOURS[beak])
    if eye == "white":
        draw.polygon(pose.apply(BELLY_PATCH), fill=(250, 250, 250))
    draw.polygon(pose.apply(CROWN_STRIPE), fill=WING_BARS[wing])
    for shape in {"plain": [], "barred": BREAST_BARS, "spotted": BREAST_SPOTS}[tail]:
        draw.polygon(pose.apply(shape), fill=(240, 240, 240))


def _draw_bird(draw, pose, label, rng, redundant=False):
    beak, eye, wing, tail = CLASSES[label]
    body = _random_colour(rng)
    dark = _shade(body, 0.7)
    for leg in LEGS:
        draw.polygon(pose.apply(leg), fill=(90, 70, 40))
    draw.polygon(pose.apply(TAIL), fill=dark)
    if tail == "barred":
        for bar in TAIL_BARS:
            draw.polygon(pose.apply(bar), fill=(240, 240, 240))
        draw.polygon(pose.apply(TAIL), outline=dark)
    elif tail == "spotted":
        for spot in TAIL_SPOTS:
            draw.polygon(pose.apply(spot), fill=(240, 240, 240))
    draw.polygon(pose.apply(BODY), fill=body)
    draw.polygon(pose.apply(HEAD), fill=body)
    draw.polygon(pose.apply(WING), fill=dark)
    draw.polygon(pose.apply(WING_BAR), fill=WING_BARS[wing])
    if redundant:
        _draw_second_cues(draw, pose, label)
    draw.polygon(pose.apply(BEAK), fill=BEAK_COLOURS[beak])
    if eye == "white":
        draw.polygon(pose.apply(EYE_RING), fill=(250, 250, 250))
    draw.polygon(pose.apply(PUPIL), fill=(10, 10, 10))


def _masks(pose, size):
    shapes = {
        "beak": [BEAK],
        "eye": [EYE_REGION],
        "wing": [WING],
        "tail": [TAIL],
        "bird": [BODY, HEAD, BEAK, WING, TAIL] + LEGS,
    }
    out = np.zeros((len(MASK_NAMES), size, size), dtype=np.uint8)
    for i, name in enumerate(MASK_NAMES):
        canvas = Image.new("L", (size, size), 0)
        d = ImageDraw.Draw(canvas)
        for poly in shapes[name]:
            d.polygon(pose.apply(poly), fill=255)
        out[i] = np.asarray(canvas)
    return out


def _random_pose(rng, size):
    scale = rng.uniform(0.30, 0.42) * size
    margin = scale * 1.05
    centre = tuple(rng.uniform(margin, size - margin, 2)) if size > 2 * margin else (size / 2,) * 2
    return Pose(centre=centre, scale=scale, angle=rng.uniform(-0.45, 0.45), flip=bool(rng.random() < 0.5))


def _lighting(img, rng):
    """Global gain, a linear shading gradient in a random direction, a colour cast and noise."""
    h, w, _ = img.shape
    theta = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w) - 0.5
    ramp = 1.0 + rng.uniform(0.0, 0.7) * (np.cos(theta) * xx + np.sin(theta) * yy)
    gain = rng.uniform(0.65, 1.25) * ramp[..., None] * (1 + rng.uniform(-0.08, 0.08, 3))
    noisy = img * gain + rng.normal(0, rng.uniform(3, 10), img.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def render(label: int, rng: np.random.Generator, size: int = 64, supersample: int | None = None,
           redundant: bool = False):
    """Draw one image of class ``label``: returns ``(image uint8 HxWx3, masks uint8 5xHxW in {0,1})``.
    ``redundant=True`` adds the second cues and changes nothing else (the same random draws)."""
    if not 0 <= label < NUM_CLASSES:
        raise BadOption(f"label must be in [0, {NUM_CLASSES}), got {label}")
    if size < 16:
        raise BadOption(f"image size must be at least 16 px, got {size}")
    ss = supersample or (2 if size <= 128 else 1)
    big = size * ss
    canvas = Image.new("RGB", (big, big), _random_colour(rng, sat=(0.0, 0.6), val=(0.3, 0.95)))
    draw = ImageDraw.Draw(canvas)
    _draw_clutter(draw, rng, big)
    pose = _random_pose(rng, big)
    _draw_bird(draw, pose, label, rng, redundant)
    masks = _masks(pose, big)
    if ss > 1:
        canvas = canvas.resize((size, size), Image.BOX)
        masks = masks.reshape(len(MASK_NAMES), size, ss, size, ss).mean((2, 4))
    image = _lighting(np.asarray(canvas, dtype=np.float32), rng)
    return image, (masks >= 128).astype(np.uint8)


def image_seed(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image: independent of every other image."""
    return np.random.default_rng([seed, SPLITS[split], index])


class SynthBirds:
    """The embedded dataset as a torch-style Dataset (``len`` and ``[i]``).

    ``SynthBirds("train")`` is the retrieval database, ``SynthBirds("test")`` the queries and
    ``SynthBirds("val")`` a validation split for model selection. Labels cycle through the
    classes (``label = index % 54``), so every prefix is class-balanced.

    ``transform`` takes a PIL image (torchvision transforms); without one an item is a
    float tensor 3xHxW in [0, 1]. With ``return_masks=True`` an item is
    ``(image, label, masks)`` where masks is a uint8 tensor 5xHxW (``MASK_NAMES``).

    ``redundant=True``: every attribute is also shown by a second cue elsewhere on the bird (a rump
    band in the beak's colour, a white belly patch with the white eye ring, a crown stripe in the
    wing bar's colour, breast bars or spots with the tail's pattern), so a class stays recoverable
    when one part is hidden, as real species carry several correlated cues. The same images
    otherwise (pose, colours, clutter); the part masks mark the first cues. Default: off.
    """

    def __init__(self, split: str = "train", per_class: int = 30, image_size: int = 64,
                 seed: int = 0, transform=None, return_masks: bool = False, redundant: bool = False):
        if split not in SPLITS:
            raise BadOption(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if per_class < 1:
            raise BadOption(f"per_class must be at least 1, got {per_class}")
        self.split, self.per_class, self.image_size, self.seed = split, per_class, image_size, seed
        self.transform, self.return_masks, self.redundant = transform, return_masks, redundant
        self.classes = [class_name(c) for c in range(NUM_CLASSES)]
        self.targets = np.arange(len(self)) % NUM_CLASSES

    def __len__(self) -> int:
        return self.per_class * NUM_CLASSES

    def render(self, index: int):
        """``(image uint8 HxWx3, masks uint8 5xHxW)`` of item ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} images")
        return render(int(self.targets[index]), image_seed(self.seed, self.split, index), self.image_size,
                      redundant=self.redundant)

    def __getitem__(self, index: int):
        import torch

        image, masks = self.render(index)
        if self.transform is not None:
            x = self.transform(Image.fromarray(image))
        else:
            x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255)
        label = int(self.targets[index])
        return (x, label, torch.from_numpy(masks)) if self.return_masks else (x, label)

    def cache_path(self) -> Path:
        """The file that keeps the rendered split: every argument the images depend on, and a digest
        of the renderer (this file, geometry.py, Pillow's and numpy's versions) so that a change to any
        of them draws the split again instead of reading stale images."""
        return cache_dir() / (f"synthbirds-{self.split}-{self.per_class}x{self.image_size}-seed{self.seed}"
                              f"-r{int(self.redundant)}-{renderer_digest()}.npz")

    def arrays(self, progress: bool = False, cache: bool = True):
        """All images, labels and masks as numpy arrays (N,H,W,3), (N,), (N,5,H,W).

        ``cache=True``: drawn once and then read from :meth:`cache_path` (a split of the course takes
        seconds to draw and milliseconds to read; the same arrays either way). A cache file that cannot
        be read is drawn again; one that cannot be written is skipped."""
        from tqdm.auto import tqdm

        n, s = len(self), self.image_size
        saved = read_split(self.cache_path(), n, s) if cache else None
        if saved is not None:
            return saved[0], self.targets.copy(), saved[1]
        images = np.empty((n, s, s, 3), np.uint8)
        masks = np.empty((n, len(MASK_NAMES), s, s), np.uint8)
        for i in tqdm(range(n), disable=not progress, desc=f"rendering {self.split}"):
            images[i], masks[i] = self.render(i)
        if cache:
            write_split(self.cache_path(), images, masks)
        return images, self.targets.copy(), masks

    def tensors(self, progress: bool = False):
        """All images as one normalised float tensor (N, 3, H, W) and labels (N,): the fast
        path for training and encoding, since the whole split fits in memory."""
        import torch

        from .transforms import normalize_batch

        images, labels, _ = self.arrays(progress)
        return normalize_batch(images), torch.from_numpy(labels)

