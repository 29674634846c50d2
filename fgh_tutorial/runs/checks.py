"""What a command is given, checked before any work starts, so that a mistake costs seconds and
never a half-done job:

    outputs   not a folder where a file is asked for (nor a file where a folder is), not inside a
              run folder unless it is that run's own write, in a folder this process can write,
              and every name the command will write (temporary files and locks included) within
              the filesystem's limits on a name and a path
    sizes     an image size and batch whose input alone fits in the memory this machine has
              (the network's activations take several times more)
    options   finite, in range (options.py: code lengths once each, a positive finite lr)
    data      every split a command needs holds at least one image (queries, validation images)
    images    the files given to ``query`` are files, not folders

Folders that cannot be read, folders without images and names in any encoding are handled
where the folder is listed (``data.images.list_images``), so every command meets them alike.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import BadData, BadOption, MissingFile
from ..files import TEMP_EXTRA, TEMP_SUFFIX, path_bytes
from .manifest import enclosing_run

NAME_MAX, PATH_MAX = 255, 4096  # when the filesystem does not say
INPUT_SHARE = 4  # the input batch may take at most a quarter of the available memory


# ---------------------------------------------------------------- outputs
def _existing(folder: Path) -> Path:
    """The nearest folder at or above ``folder`` that exists."""
    for f in (folder, *folder.parents):
        if f.exists():
            return f
    return Path("/")


def _limit(folder: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(folder, name))
    except (OSError, ValueError, AttributeError):
        return default


def check_writable(folder, what: str = "--out") -> None:
    """Raise unless this process can create files in ``folder`` (or in the folder that will hold it)."""
    base = _existing(Path(folder))
    if not base.is_dir():
        raise BadOption(f"{what}: {base} is a file, so {folder} cannot be made a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".fgh-write-check.", suffix=TEMP_SUFFIX, dir=base)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise BadOption(f"{what}: cannot write in {base} ({err.strerror or err}); choose a folder you can write") from None


def check_names(folder, names, what: str = "--out") -> None:
    """Raise when a file ``folder/NAME`` of ``names`` (or a temporary file or lock beside it) would
    have a name or a path longer than the filesystem allows."""
    folder = Path(folder).expanduser().absolute()
    base = _existing(folder)
    name_max, path_max = _limit(base, "PC_NAME_MAX", NAME_MAX), _limit(base, "PC_PATH_MAX", PATH_MAX)
    for part in folder.relative_to(base).parts:  # folders still to be made
        if len(path_bytes(part)) > name_max:
            raise BadOption(f"{what}: the folder name {part[:40]}... has {len(path_bytes(part))} bytes; this "
                            f"filesystem allows {name_max}")
    for name in names:
        *sub, leaf = Path(name).parts
        longest = len(path_bytes(leaf)) + TEMP_EXTRA
        if longest > name_max:
            raise BadOption(f"{what}: the name {leaf[:40]}... is too long: with the temporary file written before it "
                            f"it takes {longest} bytes, and this filesystem allows {name_max}; choose a shorter name")
        full = len(path_bytes(folder.joinpath(*sub))) + 1 + longest
        if full >= path_max:
            raise BadOption(f"{what}: the path {folder / name} is too long ({full} bytes with its temporary file; "
                            f"this system allows {path_max - 1}); choose a shorter path")


def check_output_file(path, names=(), what: str = "--out") -> Path:
    """Check the output file ``path`` and the ``names`` written beside it (in its folder)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise BadOption(f"{what} {path} is a folder: give a file name (such as {path / 'codes.npz'})")
    for name in names:
        if (path.parent / name).is_dir():
            raise BadOption(f"{what}: {path.parent / name} is a folder, and this command writes a file there")
    run = enclosing_run(path.parent)
    if run is not None:
        raise BadOption(f"{what} {path} is inside the run folder {run}: its files belong to the run (writing there "
                        "would replace or mix with them); choose a path outside it")
    check_names(path.parent, [path.name, *names], what)
    check_writable(path.parent, what)
    return path


def check_output_folder(folder, names=(), what: str = "--out") -> Path:
    """Check a run folder to write: not a file, not inside another run, names within limits."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise BadOption(f"{what} {folder} is a file, not a folder")
    run = enclosing_run(folder.parent)
    if run is not None:
        raise BadOption(f"{what} {folder} is inside the run folder {run}: choose a folder outside it")
    check_names(folder, names, what)
    check_writable(folder, what)
    return folder


# ---------------------------------------------------------------- sizes and memory
def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_sizes(image_size: int, batch_size: int, what: str = "--image-size") -> None:
    """Refuse an image size and batch whose float32 input batch (B x 3 x S x S) would take more
    than a quarter of the available memory: the network's activations need several times the input."""
    from PIL import Image

    side, batch = int(image_size), int(batch_size)
    if side < 8:
        raise BadOption(f"{what} {side}: images of under 8 px leave no feature map to hash; use 32 or more")
    if Image.MAX_IMAGE_PIXELS and side * side > Image.MAX_IMAGE_PIXELS:
        raise BadOption(f"{what} {side}: {side} x {side} px is over PIL's decompression-bomb limit of "
                        f"{Image.MAX_IMAGE_PIXELS} pixels; the profiles use 64 and 448")
    need = batch * 3 * side * side * 4
    have = available_memory()
    if have is not None and need * INPUT_SHARE > have:
        raise BadOption(f"{what} {side} with --batch-size {batch}: one batch takes {_bytes(need)} of memory as input "
                        f"alone (the network needs several times more), and this machine has {_bytes(have)} "
                        "available; use a smaller --image-size or --batch-size")


# ---------------------------------------------------------------- data and images
def check_splits(splits: dict, root=None) -> None:
    """Every split training needs holds images: the database, the queries, the validation images."""
    where = f" of {root}" if root else ""
    roles = {"train": "database images", "test": "queries", "val": "validation images (held out for model selection)"}
    for name, role in roles.items():
        if name in splits and len(splits[name][1]) == 0:
            more = " (a share of the database is held out: add images)" if name == "val" else ": add images"
            raise BadData(f"the data{where} gives no {role}{more}")


def check_image_files(images) -> list[Path]:
    """The image files given to a command: at least one, each a file (a folder is named as such)."""
    images = [images] if isinstance(images, (str, Path)) else list(images)
    if not images:
        raise BadOption("images: give at least one image file")
    paths = [Path(p).expanduser() for p in images]
    folders = [str(p) for p in paths if p.is_dir()]
    if folders:
        raise BadOption(f"{', '.join(folders[:3])}: a folder, not an image file; give image files (such as "
                        f"{Path(folders[0]) / '*.jpg'}), or encode a whole folder with 'encode --data'")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise MissingFile(f"image(s) not found: {', '.join(missing)}")
    return paths


__all__ = ["available_memory", "check_image_files", "check_names", "check_output_file", "check_output_folder",
           "check_sizes", "check_splits", "check_writable"]
