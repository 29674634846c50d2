"""The sharded index (Ray actors) against the single-process HammingIndex, in one run:
top-10 over 10,000,000 x 64-bit codes, the same queries, answers checked equal.

    single      HammingIndex in this process (numba, all cores)
    1 shard     one actor holding every code (all cores): the cost of going through Ray
    2 shards    two actors of one core each, the driver merging their top-k lists
    merge       the driver's merge alone (merge_topk over the shards' lists), as a share of a search

Searches are timed in interleaved rounds (best of each), so that a change in the load of a shared
machine hits the three alike.

On one machine shards only split the same cores; the gain of sharding is memory and cores that
one machine does not have (a cluster: ``ShardedIndex(..., address="auto")``).

    python benchmarks/bench_sharded_index.py [--n 10000000] [--queries 100] [--k 10] [--rounds 3]
"""
import argparse
import os
import time

import numpy as np

from fgh_tutorial.course.timing import best_time
from fgh_tutorial.retrieval.index import HammingIndex
from fgh_tutorial.retrieval.ray_cluster import connect
from fgh_tutorial.retrieval.sharded import ShardedIndex, merge_topk


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3, help="rounds of (single, 1 shard, 2 shards), best of each")
    a = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    rng = np.random.default_rng(0)
    db = rng.integers(0, 2**64, size=(a.n, 1), dtype=np.uint64)
    q = rng.integers(0, 2**64, size=(a.queries, 1), dtype=np.uint64)
    print(f"top-{a.k}, {a.n:,} x 64-bit codes, {a.queries} queries, {cores} cores")

    single = HammingIndex(64).add(db)
    single.search(q[:2], a.k)  # compile / load the kernels
    start = time.perf_counter()
    # Ray's CPU count is a logical budget: both sharded indexes stay up (idle between their turns),
    # each shard's kernel runs on cores // shards threads
    ray = connect(None, num_cpus=2 * cores, include_dashboard=False, log_to_driver=False)
    print(f"  Ray start-up {time.perf_counter() - start:.1f} s")
    indexes = {}
    for shards in (1, 2):
        start = time.perf_counter()
        indexes[shards] = ShardedIndex(64, shards=shards, cpus_per_shard=max(1, cores // shards)).add(db)
        indexes[shards].search(q[:2], a.k)  # the actors load the kernels
        print(f"  {shards} shard(s): actors started and {a.n:,} codes added in {time.perf_counter() - start:.1f} s")

    runs = {"single": lambda: single.search(q, a.k), 1: lambda: indexes[1].search(q, a.k),
            2: lambda: indexes[2].search(q, a.k)}
    best = {name: float("inf") for name in runs}
    for _ in range(a.rounds):  # interleaved, so that a change in the machine's load hits all three
        for name, fn in runs.items():
            t, _ = best_time(fn, repeat=1)
            best[name] = min(best[name], t)
    ref = single.search(q, a.k)
    for shards, index in indexes.items():
        dist, ids = index.search(q, a.k)
        assert np.array_equal(dist, ref[0]) and np.array_equal(ids, ref[1]), "answers differ from HammingIndex"

    print(f"  single HammingIndex   {best['single']:7.3f} s  {a.queries / best['single']:8.1f} queries/s   (reference)")
    for shards, index in indexes.items():
        parts = index.shard_results(q, a.k)
        t_merge, _ = best_time(lambda: merge_topk(parts, a.k, index.ntotal))
        t = best[shards]
        print(f"  {shards} shard{'s' if shards > 1 else ' '} x {max(1, cores // shards)} cpu   {t:7.3f} s  "
              f"{a.queries / t:8.1f} queries/s   time ratio {t / best['single']:.2f}x single   "
              f"merge {1000 * t_merge:.2f} ms = {100 * t_merge / t:.2f}% of the search")
        index.close()
    ray.shutdown()


if __name__ == "__main__":
    main()
