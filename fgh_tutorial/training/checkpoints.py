"""Checkpoints: written atomically (temporary file, then rename) and read with
``torch.load(weights_only=True)``, so a checkpoint holds tensors, numbers, strings, lists and dicts
and can never run code when it is opened.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch


def save_checkpoint(path, payload: dict) -> Path:
    """Write ``payload`` to ``path`` atomically: a crash leaves the previous file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path, map_location="cpu") -> dict:
    """A checkpoint written by :func:`save_checkpoint` (or any tensors-only file), never unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with warnings.catch_warnings():  # torch's remarks on an old pickle protocol: the error below says it all
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # an unpickling error, a truncated file, a file of another kind
        raise ValueError(f"{path} is not a readable checkpoint ({type(err).__name__}: {str(err).splitlines()[0][:200]})") from None
