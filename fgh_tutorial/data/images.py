"""Image files: the one way the package decodes an image, lists an image folder and checks files.

``open_image(source, name)`` turns a path or the bytes of a file into an RGB PIL image, for
training, encoding, queries and the explorer's uploads alike:

- the whole file is decoded (``load()``), so truncated or broken data fails here and not later;
  with ``check=True`` (the default) a JPEG is also decoded by libjpeg-turbo in strict mode
  (simplejpeg), which reports corrupt scan data that PIL decodes silently into a damaged
  picture, and a PNG's chunk checksums are verified;
- EXIF orientation is applied (a phone photo taken upright comes out upright);
- every mode becomes RGB: 16-bit grey ("I;16", "I" within 0..65535) is scaled by 255/65535
  (PIL's own conversion clips it, so most 16-bit images turn white), other "I" and "F" images
  are stretched from their minimum to their maximum (floats already in [0, 1] are scaled by
  255), images with alpha ("LA", "RGBA", "P" with transparency, ...) are composited on white,
  "1", "L", "P", "CMYK", "YCbCr" are converted by PIL;
- an image over PIL's decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS`` pixels) is
  refused with a message that says so;
- every failure is a :class:`BadImageError` (a ValueError) that names the file.

Folder listings skip hidden files and macOS ``._*`` resource forks, and stop at a folder they
cannot read (a ``BadData`` naming it) instead of leaving its images out without a word.
"""
from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import BadData, BadOption, BadOptionType, MissingFile

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ON_BAD_IMAGE = ("fail", "skip")
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class BadImageError(BadData):
    """A file that cannot be decoded as an image; the message names the file."""


def open_image(source, name: str | None = None, check: bool = True) -> Image.Image:
    """An RGB image of ``source`` (a path, or the bytes of an image file); ``name`` is how errors
    call it (default: the path, or "upload")."""
    data, name = _read(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, as an error
            image = Image.open(io.BytesIO(data))
        _check_size(image, name)
        if check:
            _check_strict(image.format, data)
        image.load()
        image = _orient(image)
        return to_rgb(image)
    except BadImageError:
        raise
    except Image.DecompressionBombError as err:
        raise BadImageError(f"{name}: {err} Refused as a possible decompression bomb; if you trust the file, "
                            "raise PIL.Image.MAX_IMAGE_PIXELS or downscale the image") from None
    except MemoryError:
        raise BadImageError(f"{name}: not enough memory to decode this image; downscale it") from None
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, struct.error, zlib.error, ...
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        if isinstance(err, UnidentifiedImageError):
            reason = "not an image file of a format PIL reads"
        raise BadImageError(f"{name}: cannot decode image ({reason})") from None


def _read(source, name):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "upload"
    if not isinstance(source, (str, Path)):
        raise BadOptionType(f"source must be a path or the bytes of an image file, got {type(source).__name__}")
    path = Path(source).expanduser()
    name = name or str(path)
    if not path.is_file():
        raise MissingFile(f"{name} is a folder, not an image file" if path.is_dir() else f"image file not found: {name}")
    try:
        return path.read_bytes(), name
    except OSError as err:
        raise BadImageError(f"{name}: cannot read the file ({err.strerror or err})") from None


def _check_size(image, name):
    limit = Image.MAX_IMAGE_PIXELS
    pixels = image.width * image.height
    if limit and pixels > limit:
        raise BadImageError(f"{name}: {image.width} x {image.height} = {pixels} pixels is over the decompression-bomb "
                            f"limit of {limit} pixels (PIL.Image.MAX_IMAGE_PIXELS); if you trust the file, raise that "
                            "limit or downscale the image")


def _check_strict(fmt, data):
    """Corruption that PIL decodes without complaint: bad JPEG scan data, PNG checksums."""
    if fmt == "JPEG":
        import simplejpeg

        for colorspace in ("GRAY", "CMYK"):  # grey needs no colour conversion; CMYK for the rare YCCK file
            try:
                simplejpeg.decode_jpeg(data, colorspace=colorspace, fastdct=True, fastupsample=True, strict=True)
                return
            except ValueError as err:
                if "color conversion" not in str(err):
                    raise OSError(str(err) if "JPEG" in str(err) else f"corrupt JPEG data: {err}") from None
    elif fmt == "PNG":
        Image.open(io.BytesIO(data)).verify()


def _orient(image):
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # unreadable EXIF: no orientation can be applied, the pixels are fine
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` in RGB mode, converting every PIL mode as described in the module docstring."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return Image.fromarray(_grey_to_uint8(np.asarray(image), mode), "L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise BadImageError(f"images of mode {mode!r} cannot be converted to RGB ({err})") from None


def _grey_to_uint8(a: np.ndarray, mode: str) -> np.ndarray:
    """16-bit, 32-bit integer or float grey levels as 0..255 (see the module docstring)."""
    a = a.astype(np.float64)
    a[~np.isfinite(a)] = 0
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode in _SIXTEEN_BIT or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = a * (255 / 65535)
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = a * 255
    else:
        scaled = (a - lo) * (255 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- folders and checks
def is_image_file(path) -> bool:
    """An image by its suffix, and not a hidden file or a macOS ``._`` resource fork."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def unreadable(folder, err: OSError) -> BadData:
    return BadData(f"cannot read the folder {folder} ({err.strerror or err}): its images would be left out; "
                   "fix its permissions, or move it out of the data")


def list_images(folder, recursive: bool = False) -> list[Path]:
    """The image files of ``folder`` (sorted), skipping hidden files and folders and ``._*`` files;
    a folder that cannot be read raises a ``BadData`` naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFile(f"folder not found: {folder}")
    found, todo = [], [folder]
    while todo:
        current = todo.pop()
        try:
            with os.scandir(current) as entries:
                entries = list(entries)
        except OSError as err:
            raise unreadable(current, err) from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if entry.is_dir():
                if recursive and not entry.is_symlink():  # as rglob: symlinked folders are not entered
                    todo.append(path)
            elif is_image_file(path) and entry.is_file():
                found.append(path)
    return sorted(found)


def check_images(paths, progress: bool = True, desc: str = "checking images") -> list[tuple[Path, str]]:
    """Fully decode every file (``check=True``); returns (path, reason) of each one that fails."""
    from tqdm.auto import tqdm

    bad = []
    for path in tqdm(list(paths), desc=desc, disable=not progress):
        try:
            open_image(path)
        except (BadImageError, OSError) as err:
            bad.append((Path(path), str(err)))
    return bad


def check_policy(on_bad_image: str) -> str:
    if on_bad_image not in ON_BAD_IMAGE:
        raise BadOption(f"on_bad_image must be one of {ON_BAD_IMAGE}, got {on_bad_image!r}")
    return on_bad_image


__all__ = ["BadImageError", "IMAGE_SUFFIXES", "ON_BAD_IMAGE", "check_images", "check_policy", "is_image_file",
           "list_images", "open_image", "to_rgb", "unreadable"]
