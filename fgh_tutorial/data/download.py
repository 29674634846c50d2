"""Downloading archives with a checksum check, and unpacking them safely.

A download is written by ``files.atomic_write`` and renamed into place only once complete and
verified, so an interrupted or corrupt download never looks like a good file, and its temporary
file is removed on any failure. Unpacking is done once: a marker
``root/.<archive>.extracted`` is written after a complete extraction, and later calls find it
and neither download nor unpack again (a user's edits to the extracted files stay; delete the
marker to unpack afresh).
"""
from __future__ import annotations

import hashlib
import tarfile
import urllib.request
import zipfile
from pathlib import Path

from ..errors import BadFile, EnvironmentFailure, FghError
from ..files import atomic_write, file_digest


class ChecksumError(BadFile):
    """A file whose checksum is not the published one."""


class DownloadError(EnvironmentFailure):
    """A download that failed (no network, a server that does not answer)."""


def verify(path, md5: str | None) -> None:
    if md5 is not None and (got := file_digest(path, "md5")) != md5:
        raise ChecksumError(f"{path}: md5 is {got}, expected {md5}. The file is corrupt or incomplete; "
                            "delete it and download again.")


def download(url: str, dest, md5: str | None = None, progress: bool = True, timeout: float = 60) -> Path:
    """Fetch ``url`` to ``dest`` (a file path) unless a verified copy is already there."""
    from tqdm.auto import tqdm

    dest = Path(dest)
    if dest.exists():
        verify(dest, md5)
        return dest

    def fetch(out):
        h = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress) as bar:
                for block in iter(lambda: resp.read(1 << 20), b""):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
        if md5 is not None and h.hexdigest() != md5:
            raise ChecksumError(f"{url}: md5 is {h.hexdigest()}, expected {md5}. The download is corrupt or "
                                "incomplete; try again, or download it by hand.")

    try:
        atomic_write(dest, fetch)  # renamed into place only when complete and verified
    except FghError:  # a checksum, or a full disk
        raise
    except OSError as err:  # URLError is an OSError
        raise DownloadError(f"could not download {url}: {err}. Download it by hand to {dest}.") from err
    return dest


def extract(archive, into) -> Path:
    """Unpack a .tar, .tar.gz/.tgz or .zip archive into ``into``, refusing paths that escape it."""
    archive, into = Path(archive), Path(into)
    into.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            _check_members(z.namelist(), into)
            z.extractall(into)
    else:
        with tarfile.open(archive) as t:
            _check_members([m.name for m in t.getmembers()], into)
            t.extractall(into, filter="data")
    return into


def _check_members(names, into):
    root = into.resolve()
    for name in names:
        if not (root / name).resolve().is_relative_to(root):
            raise BadFile(f"refusing to extract {name!r}: it would land outside {root}")


def extracted_marker(root, filename: str) -> Path:
    return Path(root) / f".{filename}.extracted"


def download_and_extract(url: str, root, filename: str, md5: str | None = None, progress: bool = True) -> Path:
    """Download (verified) and unpack ``filename`` into ``root``, unless a previous call did both."""
    root = Path(root)
    marker = extracted_marker(root, filename)
    if marker.is_file() and (md5 is None or marker.read_text().strip() in ("", md5)):
        return root
    archive = download(url, root / filename, md5, progress)
    extract(archive, root)
    atomic_write(marker, md5 or "")
    return root


__all__ = ["ChecksumError", "DownloadError", "download", "download_and_extract", "extract", "file_digest", "verify"]
