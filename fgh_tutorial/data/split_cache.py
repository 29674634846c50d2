"""The drawn SynthBirds splits on disk: one ``.npz`` per split, named by the split's arguments and a digest
of the renderer (synthetic.py, geometry.py, Pillow's and numpy's versions), masks packed 8 per byte, read
without pickle; a file that is missing, damaged or of another shape or type reads as None."""
from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

from ..errors import EnvironmentFailure
from ..files import atomic_write

N_MASKS = 5  # synthetic.MASK_NAMES: four parts and the bird


@functools.cache
def renderer_digest() -> str:
    import PIL

    digest = hashlib.sha1(f"Pillow {PIL.__version__} numpy {np.__version__}".encode())
    for source in (Path(__file__).with_name("synthetic.py"), Path(__file__).with_name("geometry.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:10]


def read_split(path: Path, n: int, size: int):
    """(images, masks) kept at ``path``, or None when it is missing, damaged or of another shape."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            images, packed = saved["images"], saved["masks"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (images.shape, images.dtype, packed.shape, packed.dtype) != ((n, size, size, 3), np.uint8,
                                                                      (n, N_MASKS, size, (size + 7) // 8), np.uint8):
        return None
    return images, np.unpackbits(packed, axis=-1, count=size)  # masks are 0/1: 8 per byte on disk


def write_split(path: Path, images: np.ndarray, masks: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, images=images, masks=np.packbits(masks, axis=-1))
    try:
        atomic_write(path, buffer.getvalue())
    except (OSError, EnvironmentFailure):  # a read-only or full cache folder only costs the next run the drawing
        pass
