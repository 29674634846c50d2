"""Encoding a folder of images of any size into one codes file, shard by shard, on the CPUs and
GPUs of a Ray cluster, or in this process:

    python -m fgh_tutorial encode --run runs/fcaenet48 --data photos/ --out photos.npz
    python -m fgh_tutorial encode ... --ray auto     # a running cluster (ray start --head / --address)

writes

    OUT.npz         packed codes (``retrieval/codes.py``) with ``ids`` 0..n-1
    OUT.paths.json  {"root": FOLDER, "bits": c, "paths": [...]}: id i is the image paths[i]
    OUT.parts/      the finished shards while the work runs: a restart skips them; removed at the end

The images are every file with an image suffix under FOLDER, recursively, in sorted order of their
relative paths, read as ``data.real.ImageList`` with the run's deterministic transform
(``default_transform``, as ``query`` reads an image). Shard s holds images [s S, (s + 1) S), S a
multiple of the batch size, so the batches are those of one in-order pass at this batch size and
codes from Ray workers on CPUs equal those computed here, bit for bit (GPU workers compute in
other kernels). A shard file keeps a fingerprint of the run's weights, the batch size and its
images (path, size, modification time); a shard whose fingerprint differs is encoded again.
Workers read images by path, so on a cluster FOLDER must be on storage every node can reach.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .data import default_transform
from .data.real import IMAGE_SUFFIXES, ImageList
from .models.encode import encode
from .retrieval.codes import load_codes, pack_codes, save_codes
from .runs import load_run


def image_paths(root) -> list[Path]:
    """Every image file under ``root`` (recursively, hidden folders skipped), sorted by relative path."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data: folder {root} does not exist")
    files = sorted(p.relative_to(root) for p in root.rglob("*")
                   if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise FileNotFoundError(f"--data: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}")
    return files


def encode_paths(model, paths, image_size: int, batch_size: int, workers: int = 0) -> np.ndarray:
    """Packed codes of image files, in order, decoded by ``workers`` loader processes: the work of
    one shard, here or in a Ray worker."""
    images = ImageList([(p, 0) for p in paths], [""], default_transform(image_size), "folder")
    batches = DataLoader(images, batch_size=batch_size, shuffle=False, num_workers=workers)
    return pack_codes(np.concatenate([encode(model, x, batch_size) for x, _ in batches]))


class Encoder:
    """A Ray actor holding the network: encodes shards on its CPUs, or on its GPU with its CPUs
    decoding images (Ray shows an actor only the GPUs it was given)."""

    def __init__(self, model, image_size: int, batch_size: int, cpus: int = 1):
        gpu = torch.cuda.is_available()
        torch.set_num_threads(max(1, int(cpus)))
        self.model, self.image_size, self.batch_size = model.to("cuda" if gpu else "cpu").eval(), image_size, batch_size
        self.workers = max(0, int(cpus) - 1) if gpu else 0

    def encode(self, shard: int, paths: list):
        return shard, encode_paths(self.model, paths, self.image_size, self.batch_size, self.workers)


def _fingerprint(weights: bytes, root: Path, rel: list, batch_size: int, image_size: int) -> np.ndarray:
    h = hashlib.sha256(weights)
    h.update(f"{batch_size} {image_size}".encode())
    for r in rel:
        st = (root / r).stat()
        h.update(f"\0{r.as_posix()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return np.frombuffer(h.digest(), np.uint8)


def _done(part: Path, key: np.ndarray, bits: int, count: int) -> bool:
    """Whether ``part`` is a finished shard of these images with this run."""
    try:
        words, _, extra = load_codes(part, bits)
    except (FileNotFoundError, ValueError):
        return False
    return len(words) == count and np.array_equal(extra.get("key"), key)


def _ray_workers(ray, model, image_size, batch_size, workers, cpus, gpus):
    from ray.util import ActorPool

    resources = ray.cluster_resources()
    gpus = (1 if resources.get("GPU", 0) >= 1 else 0) if gpus is None else gpus
    if workers is None:
        workers = int(resources.get("GPU", 0) // gpus) if gpus else int(resources.get("CPU", 1) // cpus)
    actor = ray.remote(Encoder).options(num_cpus=cpus, num_gpus=gpus)
    ref = ray.put(model)
    return ActorPool([actor.remote(ref, image_size, batch_size, max(1, int(cpus))) for _ in range(max(1, workers))])


def encode_folder(run, data, out, batch_size: int = 64, shard_size: int | None = None, ray: str | bool | None = None,
                  workers: int | None = None, cpus_per_worker: float = 1, gpus_per_worker: float | None = None,
                  progress: bool = True) -> Path:
    """Encode every image under ``data`` with the network of ``run``; returns the codes file.

    ``ray``: False encodes in this process; None or "local" starts a local Ray instance (all cores;
    this process when Ray is not installed); "auto" or "host:port" joins a cluster. ``workers``:
    Ray actors (default: one per GPU of the cluster, else one per ``cpus_per_worker`` CPUs), or in
    this process the image-decoding loader processes (default: the cores but one, at most 8)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    shard_size = batch_size * max(1, -(-(shard_size or 4096) // batch_size))  # a multiple of the batch size
    config, model, prof = load_run(run)
    bits, root = int(config["bits"]), Path(data).expanduser()
    rel = image_paths(root)
    out = Path(out)
    out = out if out.suffix == ".npz" else out.with_name(out.name + ".npz")
    parts = out.with_name(out.stem + ".parts")
    parts.mkdir(parents=True, exist_ok=True)
    weights = (Path(run) / "model.pt").read_bytes()
    shards = [rel[s:s + shard_size] for s in range(0, len(rel), shard_size)]
    keys = [_fingerprint(weights, root, names, batch_size, prof.image_size) for names in shards]
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
            finish(s, encode_paths(model, paths, prof.image_size, batch_size, workers))
    else:
        pool = _ray_workers(engine, model, prof.image_size, batch_size, workers, cpus_per_worker, gpus_per_worker)
        try:
            for s, words in pool.map_unordered(lambda actor, job: actor.encode.remote(*job), jobs):
                finish(s, words)
        except engine.exceptions.RayTaskError as err:
            raise getattr(err, "cause", None) or err from None
    bar.close()
    words = np.concatenate([load_codes(parts / f"{s:06d}.npz", bits)[0] for s in range(len(shards))])
    save_codes(out, words, bits, ids=np.arange(len(words), dtype=np.int64))
    listing = {"root": str(root.resolve()), "bits": bits, "paths": [r.as_posix() for r in rel]}
    paths_file = out.with_name(out.stem + ".paths.json")
    tmp = paths_file.with_name(f".{paths_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(listing))
    os.replace(tmp, paths_file)
    shutil.rmtree(parts)
    return out


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
    from .retrieval.sharded import connect

    return connect(None if ray in (None, "local") else ray)
