"""Device names, checked before any work starts: a clear error for a device this machine does
not have (``"cuda"`` without CUDA, ``"cuda:3"`` on a one-GPU machine, ``"mps"`` off Apple
silicon) or a name torch does not know, instead of a failure deep inside training.
"""
from __future__ import annotations

import torch

from ..errors import BadOption, BadOptionType

KINDS = ("cpu", "cuda", "mps")


def check_device(device, name: str = "device") -> torch.device:
    """``device`` (a string such as "cpu", "cuda", "cuda:1", "mps", or a torch.device) as a
    torch.device that exists on this machine; ``name`` is the argument named in errors."""
    if isinstance(device, torch.device):
        dev = device
    elif isinstance(device, str):
        try:
            dev = torch.device(device.strip().lower())
        except (RuntimeError, ValueError):
            raise BadOption(f"{name} {device!r} is not a device name: use one of {KINDS}, or 'cuda:N' for GPU N") from None
    else:
        raise BadOptionType(f"{name} must be a device name such as 'cpu' or 'cuda', got {type(device).__name__}")
    if dev.type not in KINDS:
        raise BadOption(f"{name} {device!r} is not supported here: use one of {KINDS}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "built without CUDA"
            raise BadOption(f"{name} {device!r} needs a CUDA GPU, but torch sees none here (torch {torch.__version__}, "
                             f"{built}): use --device cpu")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise BadOption(f"{name} {device!r}: this machine has {count} CUDA device(s), numbered 0..{count - 1}")
    if dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise BadOption(f"{name} {device!r} needs Apple's Metal (MPS), which is not available here: use --device cpu")
    return dev


__all__ = ["KINDS", "check_device"]
