"""The errors of the package: one family, so that every caller (the command line among them) can
tell a failure the user can fix from a bug. The bottom layer: imports nothing of the package.

    FghError(ValueError)      a failure the user can fix; the message names the file or the
                              argument and says what to do
      BadOption               an argument or option value: bits, k, a learning rate, an image
                              size, an output path (BadOptionType: of the wrong type, also a TypeError)
      BadData                 the images: an unreadable folder, no images, no queries, a file that
                              does not decode, data that changed since a run was trained
      BadFile                 a file the package reads: damaged, truncated, of another kind or
                              width, or in use by another writer (MissingFile: not there, also
                              a FileNotFoundError)
      EnvironmentFailure      what this machine or its network lacks: space, memory, a connection,
                              a cluster that does not answer (Timeout: waited too long)

``environment_failure(err)`` turns the raw errors of the system and of torch (no space left,
``torch.save``'s RuntimeError on a full disk, out of memory, no network) into an
EnvironmentFailure with its own message, or returns None for anything else.
"""
from __future__ import annotations

import errno
import re


class FghError(ValueError):
    """A failure the user can fix; the message names the file or argument and what to do."""


class BadOption(FghError):
    """An argument or option value that cannot be used."""


class BadOptionType(BadOption, TypeError):
    """An argument of the wrong type."""


class BadData(FghError):
    """Images or a dataset that cannot be used as they are."""


class BadFile(FghError):
    """A file that is damaged, of another kind, or in use."""


class MissingFile(BadFile, FileNotFoundError):
    """A file or folder that is not there."""


class EnvironmentFailure(FghError):
    """Something this machine or its network lacks: space, memory, a connection."""


class Timeout(EnvironmentFailure):
    """A dependency did not answer in time."""


NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
# torch.save reports a failed write as a RuntimeError of its zip writer, not as an OSError
_TORCH_WRITE = re.compile(r"file write failed|unexpected pos \d+|PytorchStreamWriter failed|No space left on device")
_CUDA = re.compile(r"CUDA (error|driver)|no CUDA GPUs|NVIDIA driver")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:200]


def no_space(path, err: BaseException | None = None) -> EnvironmentFailure:
    why = f" ({getattr(err, 'strerror', None) or _first_line(err)})" if err is not None else ""
    return EnvironmentFailure(f"{path}: no space left on its device{why}; free some space, or write elsewhere")


def environment_failure(err: BaseException, path=None) -> EnvironmentFailure | None:
    """The EnvironmentFailure that ``err`` means (``path``: the file being written), or None."""
    if isinstance(err, EnvironmentFailure):
        return err
    where = path or getattr(err, "filename", None) or "a file"
    if isinstance(err, OSError) and err.errno in NO_SPACE:
        return no_space(where, err)
    if isinstance(err, RuntimeError) and _TORCH_WRITE.search(str(err)):
        return no_space(where, err)
    if type(err).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        return EnvironmentFailure(f"the GPU ran out of memory: use a smaller --batch-size or --image-size, or "
                                  f"--device cpu ({_first_line(err)[:160]})")
    if isinstance(err, MemoryError):
        return EnvironmentFailure("out of memory: use a smaller --batch-size or --image-size, or a machine with more "
                                  f"memory ({_first_line(err)})")
    if isinstance(err, RuntimeError) and _CUDA.search(str(err)):
        return EnvironmentFailure(f"CUDA failed ({_first_line(err)}): check the GPU driver, or use --device cpu")
    import socket
    import urllib.error

    if isinstance(err, (urllib.error.URLError, socket.gaierror, socket.timeout, ConnectionError)):
        reason = getattr(err, "reason", None) or _first_line(err)
        return EnvironmentFailure(f"no network connection ({reason}): check the connection or proxy, or use local "
                                  "files instead (the message before says which)")
    return None


__all__ = ["BadData", "BadFile", "MissingFile", "BadOption", "BadOptionType", "EnvironmentFailure", "FghError", "NO_SPACE", "Timeout",
           "environment_failure", "no_space"]
