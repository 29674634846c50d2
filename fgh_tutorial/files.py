"""Files on disk: the one atomic write, the one file digest, JSON with errors that name the file, the cache folder.
The bottom layer: imports nothing of the package but ``errors``.

``atomic_write(path, data)`` (data: bytes, str, or a function that writes to a binary file):

    1. write a temporary file ``.NAME.PID.XXXXXX.tmp`` in the folder of ``path`` (same filesystem)
    2. flush and fsync it; it has the mode a plain ``open`` would give (0o666 less the umask, or the old
       file's when ``path`` exists)
    3. ``os.replace`` it onto ``path`` (atomic: a reader sees the old file or the new one)
    4. fsync the folder, so that the rename itself survives a power cut

Any failure on the way (an exception, Ctrl-C, a full disk) removes the temporary file before the
error goes on; a full disk becomes an ``EnvironmentFailure`` naming ``path``. Temporary files
left by a process that was killed outright are removed by ``remove_temporaries`` (run folders
and encoded outputs call it under their lock).

File names are bytes on disk and may be in any encoding: ``path_bytes`` gives those bytes (what
digests and fingerprints hash), so a name that is not UTF-8 never stops a command.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from pathlib import Path

from .errors import NO_SPACE, BadFile, MissingFile, no_space

TEMP_SUFFIX = ".tmp"
TEMP_EXTRA = 22  # a temporary name adds "." + "." + pid (up to 7 digits) + "." + 8 random + ".tmp"


def cache_dir() -> Path:
    """Where trained models and rendered data are kept: ``$FGH_CACHE`` or ``~/.cache/fgh_tutorial``."""
    return Path(os.environ.get("FGH_CACHE", Path.home() / ".cache" / "fgh_tutorial"))


def path_bytes(path) -> bytes:
    """The bytes of a file name as the system stores them (names in any encoding)."""
    return os.fsencode(os.fspath(path))


def shown(path) -> str:
    """A file name as text that any terminal prints (bytes that are not UTF-8 as \\xNN)."""
    return path_bytes(path).decode("utf-8", "backslashreplace")


def is_temporary(path) -> bool:
    """Whether ``path`` is a temporary file of :func:`atomic_write`."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_temporaries(folder, recursive: bool = True, of=None) -> list[Path]:
    """Remove the temporary files of writes that never finished under ``folder`` (``of``: only
    those of these file names); returns them. Call it while holding the lock of what they belong
    to (no other writer of them is at work)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    patterns = [f".{name}.*{TEMP_SUFFIX}" for name in of] if of is not None else [f".*{TEMP_SUFFIX}"]
    found = [p for pattern in patterns for p in (folder.rglob(pattern) if recursive else folder.glob(pattern))]
    gone = [p for p in found if p.is_file() and is_temporary(p)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def fsync_dir(folder) -> None:
    """Flush a folder's entries (a rename into it) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows, or a filesystem that does not allow it
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temporary(path: Path):
    """A new temporary file beside ``path``, open for writing: (fd, its path). It is created with 0o666 and the
    system takes the umask off, as for a plain ``open`` (``mkstemp`` would make it private, 0o600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:  # another write drew the same name
            continue


def atomic_write(path, data) -> Path:
    """Write ``data`` (bytes, str as UTF-8, or ``fn(binary_file)``) to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))  # a file written again keeps its mode
        except FileNotFoundError:
            pass
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in NO_SPACE:
            raise no_space(path, err) from err
        raise
    fsync_dir(path.parent)
    return path


def write_json(path, obj) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically; non-finite numbers are refused."""
    try:
        text = json.dumps(obj, indent=1, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"cannot write {path}: the values are not plain JSON ({err})") from None
    return atomic_write(path, text)


def read_json(path, kind: type = dict):
    """The JSON value (a ``kind``) of ``path``; a damaged file is a ``BadFile`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise MissingFile(f"{path} is missing" if not path.is_dir() else f"{path} is a folder, not a file")
    try:
        obj = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise BadFile(f"{path} is damaged (not valid JSON: {err})") from None
    if not isinstance(obj, kind):
        raise BadFile(f"{path} is damaged (a JSON {kind.__name__} was expected)")
    return obj


def file_digest(path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """The hex digest of a file's bytes (sha256 by default; md5 for published checksums)."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


__all__ = ["TEMP_EXTRA", "TEMP_SUFFIX", "atomic_write", "cache_dir", "file_digest", "fsync_dir", "is_temporary", "path_bytes", "read_json",
           "remove_temporaries", "shown", "write_json"]
