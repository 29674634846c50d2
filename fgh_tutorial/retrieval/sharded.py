"""``ShardedIndex``: the surface of ``HammingIndex`` (add / search / save / load) over shards held
by Ray actors, for a database larger than one process's memory or one machine's cores.

    index = ShardedIndex(64, shards=4)          # joins Ray (a local instance unless connected)
    index.add(db_codes)                         # +-1 codes or packed uint64 words; ids 0, 1, ...
    distances, ids = index.search(queries, 10)  # the very answer of HammingIndex
    index.save("db.npz")  # one codes file      index.save("db/")  # a folder of shard files
    ShardedIndex.load("db/")                    # one actor per shard file

Each ``add`` hands the new codes out in contiguous runs, the smaller shards first, so every shard
holds its codes in increasing global id. A shard answers its top-k with the compiled kernel
(``hamming_topk``), or with torch's matrix-product top-k on the GPU it was given
(``hamming_topk_torch``), ties by lower local index, which is also the lower global id. The global
top-k then lies in the union of the shards' top-k lists: the k best of a shard are a prefix of its
sorted list. The driver merges them with one key,

    key = d_H * N + id      (N = ntotal; sorting keys sorts by distance, then by lower id),

and keeps the k smallest. On a cluster (``ray start --head`` and ``ray start --address``), pass
``address="auto"``; ``cpus_per_shard`` / ``gpus_per_shard`` place one shard per core or GPU. A
folder of shard files is read by the actors themselves, so it must be on storage they can reach.
A shard's error (a damaged file, bad codes) reaches the caller as the shard raised it, in one
line (``ray_cluster.gather``); shards the cluster cannot place are refused at once, and shards
that do not start within ``FGH_RAY_TIMEOUT`` seconds end in a ``Timeout``. After ``close`` the
index refuses every call.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BadFile, BadOption, MissingFile
from ..files import read_json, write_json
from .codes import load_codes, n_words, save_codes, unpack_codes
from .hamming import database_columns, hamming_topk, hamming_topk_torch
from .index import HammingIndex, check_k
from .ray_cluster import check_room, connect, gather, start_timeout

MANIFEST = "index.json"


def merge_topk(parts, k: int, ntotal: int):
    """The global top-k of per-shard top-k lists [(distances q x k_s, global ids q x k_s)]:
    sorted by distance, ties by lower id, as ``hamming_topk`` over the whole database."""
    dist = np.concatenate([d for d, _ in parts], axis=1).astype(np.int64)
    ids = np.concatenate([i for _, i in parts], axis=1).astype(np.int64)
    key = dist * max(int(ntotal), 1) + ids
    k = min(int(k), key.shape[1])
    if k < key.shape[1]:
        key = np.partition(key, k - 1, axis=1)[:, :k]
    key.sort(axis=1)
    return (key // max(int(ntotal), 1)).astype(np.int32), key % max(int(ntotal), 1)


def fill(sizes, n: int) -> np.ndarray:
    """How many of ``n`` new codes each shard takes so that the sizes end as even as possible."""
    sizes = np.asarray(sizes, np.int64)
    order = np.argsort(sizes, kind="stable")
    take = np.zeros(len(sizes), np.int64)
    for m in range(len(sizes), 0, -1):  # the m smallest shards rise to one level
        low = order[:m]
        level, extra = divmod(int(sizes[low].sum()) + n, m)
        if level >= sizes[order[m - 1]]:
            take[low] = level - sizes[low]
            take[low[:extra]] += 1
            return take
    return take


class Shard:
    """One shard (run as a Ray actor): packed codes in increasing global id, kept as runs
    (local start, global start), answering top-k queries with global ids."""

    def __init__(self, bits: int, threads: int | None = None, use_torch: bool = False):
        self.bits, self.words = int(bits), np.empty((0, n_words(bits)), np.uint64)
        self.local, self.first = np.zeros(0, np.int64), np.zeros(0, np.int64)  # runs of ids
        self._columns = self._signs = None
        self.use_torch = bool(use_torch)  # torch top-k, on the GPU when there is one
        if threads:
            import numba

            numba.set_num_threads(int(threads))

    def ready(self) -> bool:
        return True

    def add(self, words: np.ndarray, first_id: int) -> int:
        self.local = np.append(self.local, len(self.words))
        self.first = np.append(self.first, int(first_id))
        self.words = np.concatenate([self.words, words])
        self._columns = self._signs = None
        return len(self.words)

    def ids(self) -> np.ndarray:
        ends = np.append(self.local[1:], len(self.words))
        return np.concatenate([np.arange(f, f + e - s) for s, f, e in zip(self.local, self.first, ends)]
                              or [np.zeros(0, np.int64)]).astype(np.int64)

    def runs(self) -> np.ndarray:
        """(global start, count) of each run of consecutive ids."""
        return np.stack([self.first, np.diff(np.append(self.local, len(self.words)))], 1)

    def _global(self, local_ids):
        run = np.searchsorted(self.local, local_ids, side="right") - 1
        return self.first[run] + (local_ids - self.local[run])

    def search(self, queries: np.ndarray, k: int):
        if self.use_torch:
            dist, idx = self._search_torch(queries, k)
        else:
            if self._columns is None:
                self._columns = database_columns(self.words)
            dist, idx = hamming_topk(queries, self.words, k, db_columns=self._columns)
        return dist, self._global(idx)

    def _search_torch(self, queries, k):
        import torch

        if self._signs is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
            dtype = torch.float16 if device == "cuda" else torch.float32
            self._signs = torch.as_tensor(unpack_codes(self.words, self.bits), device=device, dtype=dtype)
        q = torch.as_tensor(unpack_codes(queries, self.bits), device=self._signs.device)
        chunk = max(1, (1 << 27) // max(len(self.words), 1))  # q-chunk x n keys in int64: <= 1 GiB
        dist, idx = hamming_topk_torch(q, self._signs, k, chunk=chunk)
        return dist.cpu().numpy().astype(np.int32), idx.cpu().numpy()

    def dump(self):
        return self.words, self.ids()

    def save(self, path) -> str:
        return str(save_codes(path, self.words, self.bits, ids=self.ids()))

    def load(self, path) -> np.ndarray:
        words, bits, extra = load_codes(path, self.bits)
        ids = np.asarray(extra.get("ids", np.zeros(0)), np.int64)
        if len(ids) != len(words) or (len(ids) > 1 and (np.diff(ids) <= 0).any()):
            raise BadFile(f"{path}: a shard file needs 'ids', one per code, increasing")
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        self.local = np.concatenate([[0], breaks]).astype(np.int64) if len(ids) else np.zeros(0, np.int64)
        self.first = ids[self.local] if len(ids) else np.zeros(0, np.int64)
        self.words, self._columns, self._signs = words, None, None
        return self.runs()


class ShardedIndex:
    """``HammingIndex``'s add / search / save / load, its codes spread over ``shards`` Ray actors."""

    _as_words = HammingIndex._as_words  # the same checks of codes and queries

    def __init__(self, bits: int, shards: int = 2, address: str | None = None, cpus_per_shard: float | None = None,
                 gpus_per_shard: float = 0):
        if not 1 <= int(bits) <= 4096:
            raise BadOption(f"bits must be in 1..4096, got {bits}")
        if isinstance(shards, bool) or not isinstance(shards, (int, np.integer)) or shards < 1:
            raise BadOption(f"shards must be a positive integer, got {shards!r}")
        self.bits, self.sizes, self.closed = int(bits), np.zeros(int(shards), np.int64), False
        self._ray = connect(address)
        check_room(self._ray, int(shards), cpus_per_shard, gpus_per_shard, "shards")
        options = {}  # none: Ray's default, an actor holds no CPU while it waits, so shards may outnumber cores
        if cpus_per_shard is not None:
            options["num_cpus"] = cpus_per_shard
        if gpus_per_shard:
            options["num_gpus"] = gpus_per_shard
        threads = max(1, int(cpus_per_shard)) if cpus_per_shard else None
        actor = self._ray.remote(Shard).options(**options)
        self.actors = [actor.remote(self.bits, threads, gpus_per_shard > 0) for _ in range(int(shards))]
        self._get([a.ready.remote() for a in self.actors], "starting the shards", start_timeout())

    def _get(self, refs, what: str, timeout: float | None = None):
        return gather(self._ray, refs, f"ShardedIndex: {what}", timeout)

    def _open(self) -> None:
        if self.closed:
            raise BadOption("this ShardedIndex is closed (its shards have ended): load or build a new one")

    @property
    def n_words(self) -> int:
        return n_words(self.bits)

    @property
    def ntotal(self) -> int:
        return int(self.sizes.sum())

    def __len__(self) -> int:
        return self.ntotal

    def add(self, codes) -> "ShardedIndex":
        """Append codes; their ids continue from ``ntotal``."""
        self._open()
        new = self._as_words(codes, "codes")
        take, start, first = fill(self.sizes, len(new)), 0, self.ntotal
        calls = []
        for j in np.flatnonzero(take):
            part = new[start:start + take[j]]
            calls.append(self.actors[j].add.remote(part, first + start))
            start += int(take[j])
        self._get(calls, "adding codes")
        self.sizes += take
        return self

    def search(self, queries, k: int):
        """(distances int32, ids int64) of the k nearest codes, sorted, ties by lower id."""
        self._open()
        k = check_k(k)
        q = self._as_words(queries, "queries")
        return merge_topk(self.shard_results(q, k), k, self.ntotal)

    def shard_results(self, q: np.ndarray, k: int) -> list:
        """Every shard's top-k of packed queries ``q``, with global ids (before the merge)."""
        ref = self._ray.put(np.ascontiguousarray(q))
        return self._get([a.search.remote(ref, int(k)) for a, s in zip(self.actors, self.sizes) if s], "search") or \
            [(np.zeros((len(q), 0), np.int32), np.zeros((len(q), 0), np.int64))]

    def save(self, path) -> Path:
        """``*.npz``: one codes file (``save_codes``), what ``HammingIndex.load`` reads; any other
        path: a folder with one codes file per shard (written by the actors) and ``index.json``."""
        self._open()
        path = Path(path)
        if path.suffix == ".npz":
            words = np.empty((self.ntotal, self.n_words), np.uint64)
            for w, ids in self._get([a.dump.remote() for a in self.actors], "collecting the codes"):
                words[ids] = w
            return save_codes(path, words, self.bits)
        if path.exists() and not path.is_dir():
            raise BadOption(f"{path} is a file: a sharded index is saved to a folder (or to a .npz codes file)")
        path.mkdir(parents=True, exist_ok=True)
        (path / MANIFEST).unlink(missing_ok=True)  # the folder is incomplete until the new manifest is written
        files = [f"shard-{j:05d}.npz" for j in range(len(self.actors))]
        self._get([a.save.remote(str(path.resolve() / f)) for a, f in zip(self.actors, files)], f"saving to {path}")
        write_json(path / MANIFEST, {"bits": self.bits, "ntotal": self.ntotal, "files": files,
                                     "sizes": self.sizes.tolist()})
        return path

    @classmethod
    def load(cls, path, shards: int = 2, address: str | None = None, **options) -> "ShardedIndex":
        """An index of a codes file (spread over ``shards``) or of a folder written by ``save``
        (one shard per file, each read by its actor)."""
        path = Path(path)
        if path.is_file():
            words, bits, _ = load_codes(path)
            return cls(bits, shards, address, **options).add(words)
        if not (path / MANIFEST).is_file():
            raise MissingFile(f"no codes file or sharded index folder (with {MANIFEST}) at {path}")
        manifest = read_json(path / MANIFEST)
        files, bits, ntotal = manifest.get("files"), manifest.get("bits"), manifest.get("ntotal")
        if not (isinstance(files, list) and files and all(isinstance(f, str) and "/" not in f for f in files)
                and isinstance(bits, int) and isinstance(ntotal, int)):
            raise BadFile(f"{path / MANIFEST} is damaged: it needs 'bits', 'ntotal' and the shards' 'files'")
        missing = [f for f in files if not (path / f).is_file()]
        if missing:
            raise MissingFile(f"{path}: shard file(s) {', '.join(missing[:3])} listed in {MANIFEST} are missing")
        index = cls(bits, len(files), address, **options)
        try:
            runs = index._get([a.load.remote(str(path.resolve() / f)) for a, f in zip(index.actors, files)],
                              f"loading {path}")
        except BaseException:
            index.close()
            raise
        index.sizes = np.array([int(r[:, 1].sum()) for r in runs], np.int64)
        starts = np.concatenate([r for r in runs if len(r)] or [np.zeros((0, 2), np.int64)])
        starts = starts[np.argsort(starts[:, 0])]
        expected = np.concatenate([[0], np.cumsum(starts[:, 1])])[:-1]  # each run starts where the last ended
        if index.ntotal != ntotal or not np.array_equal(starts[:, 0], expected):
            index.close()
            raise BadFile(f"{path}: the shard files' ids do not cover 0..{ntotal - 1} once each")
        return index

    def close(self) -> None:
        """End the shard actors (they also end when the index is garbage-collected)."""
        for a in self.actors:
            self._ray.kill(a)
        self.actors, self.sizes, self.closed = [], np.zeros(0, np.int64), True

    def __repr__(self) -> str:
        state = ", closed" if self.closed else ""
        return f"ShardedIndex(bits={self.bits}, ntotal={self.ntotal}, shards={len(self.actors)}{state})"
