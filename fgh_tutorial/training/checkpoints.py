"""Checkpoints: written atomically (``files.atomic_write``) and read with
``torch.load(weights_only=True)``, so a checkpoint holds tensors, numbers, strings, lists and dicts
and can never run code when it is opened.

``torch.save`` reports a full disk as a RuntimeError of its zip writer; a checkpoint is therefore
serialised in memory first and written by ``atomic_write``, whose failures are the system's
(a full disk is an ``EnvironmentFailure`` naming the file) and which never leaves its temporary file.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from ..errors import BadFile, MissingFile
from ..files import atomic_write


def save_checkpoint(path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically: a crash leaves the previous file or the new one."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    return atomic_write(path, buf.getbuffer())


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by :func:`save_checkpoint` (or any tensors-only file), never unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch's remarks on an old pickle protocol: the error below says it all
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as err:  # an unpickling error, a truncated file, a file of another kind
        raise BadFile(f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
