"""Encoding a folder of images of any size into one codes file, shard by shard, on the CPUs and
GPUs of a Ray cluster, or in this process:

    python -m fgh_tutorial encode --run runs/fcaenet48 --data photos/ --out photos.npz
    python -m fgh_tutorial encode ... --ray auto     # a running cluster (ray start --head / --address)
    python -m fgh_tutorial encode --run runs/frozen --bits 48 ...   # a run of several code lengths

writes

    OUT.paths.json  {"root": FOLDER, "bits": c, "run": RUN, "paths": [...]}: id i is the image paths[i]
    OUT.npz         packed codes (``retrieval/codes.py``) with ``ids`` 0..n-1 and the digest of the
                    paths listing, written LAST: without it the output is visibly incomplete
    OUT.parts/      the finished shards while the work runs: a restart skips them; removed at the end
    .OUT.npz.lock   while the command runs: a second encode to the same output is refused

Everything is checked before the first image is encoded (``checks.py``): the output (not a
folder, not inside a run folder, writable, every name within the filesystem's limits), the
batch's memory, the code length (``--bits``, required when the run learned several: each
segment is its own code, never their concatenation), and the folder (readable, holding images).

The images are every file with an image suffix under FOLDER, recursively, in sorted order of their
relative paths (``data.images.list_images``), read as ``data.real.ImageList`` with the run's
deterministic transform (``default_transform``, as ``query`` reads an image). Shard s holds
images [s S, (s + 1) S), S a multiple of the batch size, so the batches are those of one in-order
pass at this batch size and codes from Ray workers on CPUs equal those computed here, bit for bit
(GPU workers compute in other kernels). A shard file keeps a fingerprint of the run's weights, the
code length, the batch size and its images (name bytes, size, modification time); a shard whose
fingerprint differs is encoded again. Workers read images by path, so on a cluster FOLDER must be
on storage every node can reach. Workers the cluster cannot place are refused at once, and
workers that do not start within ``FGH_RAY_TIMEOUT`` seconds end the command with what to check.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import default_transform
from ..data.images import IMAGE_SUFFIXES, list_images
from ..data.real import ImageList
from ..errors import BadData, BadFile, BadOption
from ..files import file_digest, path_bytes, read_json, remove_temporaries, write_json
from ..models.encode import encode
from ..retrieval.codes import load_codes, pack_codes, save_codes
from .checks import check_output_file, check_sizes
from .config import columns
from .folder import load_run
from .lock import output_lock

HINT = ("Fix or remove the file (list every bad file with `python -m fgh_tutorial verify --data FOLDER`): encode "
        "reads every image under --data")


def outputs(out) -> tuple[Path, Path, Path]:
    """(codes file OUT.npz, paths listing OUT.paths.json, shard folder OUT.parts) of ``--out``."""
    out = Path(out).expanduser()
    out = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
    return out, out.with_name(out.stem + ".paths.json"), out.with_name(out.stem + ".parts")


def image_paths(root) -> list[Path]:
    """Every image file under ``root`` (recursively, hidden folders skipped), sorted, relative to root."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BadOption(f"--data: folder {root} does not exist" if not root.exists() else f"--data {root} is a file")
    files = [p.relative_to(root) for p in list_images(root, recursive=True)]
    if not files:
        raise BadData(f"--data: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


def choose_length(lengths, bits) -> slice:
    """The code columns to write: one code length of the run (``bits``, required with several)."""
    if bits is None and len(lengths) > 1:
        raise BadOption(f"the run learned codes of {', '.join(map(str, lengths))} bits: choose one with --bits "
                        "(each length is a code of its own)")
    return columns(lengths, lengths[0] if bits is None else int(bits))


def encode_paths(model, paths, image_size: int, batch_size: int, workers: int = 0, cols=slice(None)) -> np.ndarray:
    """Packed codes (columns ``cols``) of image files, in order, decoded by ``workers`` loader
    processes: the work of one shard, here or in a Ray worker."""
    images = ImageList([(p, 0) for p in paths], [""], default_transform(image_size), "encode", HINT)
    batches = DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers)
    return pack_codes(np.ascontiguousarray(np.concatenate([encode(model, x, batch_size) for x, _ in batches])[:, cols]))


class Encoder:
    """A Ray actor holding the network: encodes shards on its CPUs, or on its GPU with its CPUs
    decoding images (Ray shows an actor only the GPUs it was given)."""

    def __init__(self, model, image_size: int, batch_size: int, cpus: int = 1, cols=slice(None)):
        gpu = torch.cuda.is_available()
        torch.set_num_threads(max(1, int(cpus)))
        self.model, self.image_size, self.batch_size = model.to("cuda" if gpu else "cpu").eval(), image_size, batch_size
        self.workers, self.cols = (max(0, int(cpus) - 1) if gpu else 0), cols

    def ready(self) -> bool:
        return True

    def encode(self, shard: int, paths: list):
        return shard, encode_paths(self.model, paths, self.image_size, self.batch_size, self.workers, self.cols)


def _fingerprint(weights: str, root: Path, rel: list, batch_size: int, image_size: int, cols: slice) -> np.ndarray:
    h = hashlib.sha256(f"{weights} {batch_size} {image_size} {cols.start}:{cols.stop}".encode())
    for r in rel:
        st = (root / r).stat()
        h.update(b"\0" + path_bytes(r.as_posix()) + f"\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return np.frombuffer(h.digest(), np.uint8)


def _done(part: Path, key: np.ndarray, bits: int, count: int) -> bool:
    """Whether ``part`` is a finished shard of these images with this run."""
    try:
        words, _, extra = load_codes(part, bits)
    except (FileNotFoundError, ValueError):
        return False
    return len(words) == count and np.array_equal(extra.get("key"), key)


def _listing_digest(listing: dict) -> np.ndarray:
    return np.frombuffer(hashlib.sha256(repr(sorted(listing.items())).encode("utf-8", "surrogateescape")).digest(),
                         np.uint8)


def encode_folder(run, data, out, batch_size: int = 64, shard_size: int | None = None, ray: str | bool | None = None,
                  workers: int | None = None, cpus_per_worker: float = 1, gpus_per_worker: float | None = None,
                  progress: bool = True, bits: int | None = None) -> Path:
    """Encode every image under ``data`` with the network of ``run``; returns the codes file.

    ``bits``: the code length to write (required for a run of several). ``ray``: False encodes in
    this process; None or "local" starts a local Ray instance (all cores; this process when Ray
    is not installed); "auto" or "host:port" joins a cluster. ``workers``: Ray actors (default:
    one per GPU of the cluster, else one per ``cpus_per_worker`` CPUs), or in this process the
    image-decoding loader processes (default: the cores but one, at most 8)."""
    for name, value, least in (("batch_size", batch_size, 1), ("shard_size", shard_size, 1), ("workers", workers, 0)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least):
            raise BadOption(f"--{name.replace('_', '-')} must be an integer of at least {least}, got {value!r}")
    shard_size = batch_size * max(1, -(-(shard_size or 4096) // batch_size))  # a multiple of the batch size
    out, paths_file, parts = outputs(out)
    check_output_file(out, [paths_file.name, f"{parts.name}/000000.npz", f".{out.name}.lock"])
    config, model, prof = load_run(run)
    cols = choose_length(config.lengths, bits)
    bits, root = cols.stop - cols.start, Path(data).expanduser()
    check_sizes(prof.image_size, batch_size, "--batch-size")
    rel = image_paths(root)
    with output_lock(out):
        if parts.exists() and not parts.is_dir():
            raise BadOption(f"--out: {parts} is a file, and encode keeps its shards in a folder of that name")
        remove_temporaries(out.parent, recursive=False, of=(out.name, paths_file.name))  # of an encode killed outright
        remove_temporaries(parts)
        out.unlink(missing_ok=True)  # the output stays visibly incomplete until its codes are written, last
        parts.mkdir(parents=True, exist_ok=True)
        try:
            weights = file_digest(Path(run) / "model.pt")
            shards = [rel[s:s + shard_size] for s in range(0, len(rel), shard_size)]
            keys = [_fingerprint(weights, root, names, batch_size, prof.image_size, cols) for names in shards]
            todo = [s for s, names in enumerate(shards) if not _done(parts / f"{s:06d}.npz", keys[s], bits, len(names))]
            engine = _engine(ray) if todo else None  # Ray starts before the progress bar
            bar = tqdm(total=len(rel), desc="encoding", unit="img", disable=not progress,
                       initial=len(rel) - sum(len(shards[s]) for s in todo))

            def finish(s, words):
                save_codes(parts / f"{s:06d}.npz", words, bits, key=keys[s])
                bar.update(len(shards[s]))

            jobs = [(s, [str(root / r) for r in shards[s]]) for s in todo]
            if engine is None:
                workers = max(0, min(8, (os.cpu_count() or 1) - 1)) if workers is None else workers
                for s, paths in jobs:
                    finish(s, encode_paths(model, paths, prof.image_size, batch_size, workers, cols))
            else:
                _on_ray(engine, (model, prof.image_size, batch_size), cols, jobs, finish, workers, cpus_per_worker,
                        gpus_per_worker)
            bar.close()
            words = np.concatenate([load_codes(parts / f"{s:06d}.npz", bits)[0] for s in range(len(shards))])
            listing = {"root": str(root.resolve()), "run": str(Path(run).resolve()), "bits": bits,
                       "paths": [r.as_posix() for r in rel]}
            write_json(paths_file, listing)
            save_codes(out, words, bits, ids=np.arange(len(words), dtype=np.int64), paths_digest=_listing_digest(listing))
            shutil.rmtree(parts)
        except BaseException:
            if parts.is_dir() and not any(parts.iterdir()):
                parts.rmdir()  # no shard finished: nothing to resume from
            raise
    return out


def _on_ray(ray, setup, cols, jobs, finish, workers, cpus, gpus) -> None:
    """Run the shards ``jobs`` on Ray actors, one shard at a time each, ``finish`` each result."""
    from ..retrieval.ray_cluster import check_room, gather, start_timeout

    resources = ray.cluster_resources()
    gpus = (1 if resources.get("GPU", 0) >= 1 else 0) if gpus is None else gpus
    if workers is None:
        workers = int(resources.get("GPU", 0) // gpus) if gpus else int(resources.get("CPU", 1) // cpus)
    if int(workers) < 1:
        raise BadOption(f"--workers {workers}: encoding on Ray needs at least one worker (or use --no-ray)")
    workers = int(workers)
    check_room(ray, workers, cpus, gpus, "--workers")  # Ray would keep the others waiting for ever
    workers = min(workers, len(jobs))
    actor = ray.remote(Encoder).options(num_cpus=cpus, num_gpus=gpus)
    model = ray.put(setup[0])
    actors = [actor.remote(model, *setup[1:], max(1, int(cpus)), cols) for _ in range(workers)]
    try:
        gather(ray, [a.ready.remote() for a in actors], "starting the encoding workers", start_timeout())
        todo, pending = list(reversed(jobs)), {}
        for a in actors:
            if todo:
                pending[a.encode.remote(*todo.pop())] = a
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            a = pending.pop(ref)
            finish(*gather(ray, ref, "encoding"))
            if todo:
                pending[a.encode.remote(*todo.pop())] = a
    finally:
        for a in actors:
            ray.kill(a)


def read_encoded(out) -> tuple[np.ndarray, int, dict]:
    """(packed codes, bits, paths listing) of an output of :func:`encode_folder`, checked to be
    one pair: the listing the codes were written with, one path per code."""
    out, paths_file, _ = outputs(out)
    words, bits, extra = load_codes(out)
    listing = read_json(paths_file)
    paths = listing.get("paths")
    if not isinstance(paths, list) or len(paths) != len(words) or listing.get("bits") != bits or \
            not np.array_equal(extra.get("paths_digest"), _listing_digest(listing)):
        raise BadFile(f"{paths_file} does not belong to {out} (another encode wrote it): encode the folder again")
    return words, bits, listing


def _engine(ray):
    """The ``ray`` module joined as asked, or None to encode in this process."""
    if ray is False:
        return None
    try:
        import ray as _  # noqa: F401
    except ImportError:
        if ray in (None, "local"):
            return None  # Ray is an optional extra: without it, encode here
        raise ImportError("--ray needs Ray: pip install 'fgh_tutorial[scale]'") from None
    from ..retrieval.ray_cluster import connect

    return connect(None if ray in (None, "local") else ray)


__all__ = ["Encoder", "choose_length", "encode_folder", "encode_paths", "image_paths", "outputs", "read_encoded"]
