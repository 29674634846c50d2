"""Packed Hamming retrieval on a GPU (the Triton kernels of ``retrieval.gpu``), each against a
reference measured in the same run, results checked equal before any time is printed.

1. top-10 over 1,000,000 x 64-bit codes, 10,000 queries: queries/s against the torch matmul +
   topk path (``hamming_topk_torch``) and faiss's GpuIndexBinaryFlat when faiss has GPU support;
   goal: at least 2x the torch path
2. full ranking of the 1,000,000 codes: ms per query per million codes, against torch's stable
   sort of the matmul distances
3. tie-aware mAP@all at Food-101 size (25,250 queries x 75,750 codes, 48 bits) and at 10,000 x
   1,000,000 (64 bits), in seconds; goal: 10,000 x 1,000,000 within 2 s
4. the bandwidth bound: bytes of codes read per query x queries/s, against the device's copy
   bandwidth measured here and its peak from the memory clock and bus width

    python benchmarks/bench_gpu_retrieval.py [--n 1000000] [--queries 10000]

Without a CUDA device it says so, runs a tiny check of the same kernels under Triton's
interpreter (equality with the CPU kernels, nothing about speed) and exits 0.
"""
import argparse
import os
import sys

import numpy as np
import torch

from fgh_tutorial.course.timing import best_time


def synced(fn):
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out
    run()  # compile and warm up
    return run


def random_words(rng, n, words=1):
    return rng.integers(0, 2**64, size=(n, words), dtype=np.uint64)


def topk(db_w, q_w, n_query, torch_chunk):
    from fgh_tutorial.retrieval import gpu, hamming_topk_torch, unpack_codes

    d, q = gpu.to_device(db_w, "cuda"), gpu.to_device(q_w, "cuda")
    t_ours, (dist, idx) = best_time(synced(lambda: gpu.topk(q, d, 10)))
    db_pm = torch.from_numpy(unpack_codes(db_w, 64)).cuda().half()
    q_pm = torch.from_numpy(unpack_codes(q_w, 64)).cuda().half()
    t_ref, (dist_ref, idx_ref) = best_time(synced(lambda: hamming_topk_torch(q_pm, db_pm, 10, chunk=torch_chunk)))
    assert torch.equal(idx, idx_ref) and torch.equal(dist.long(), dist_ref), "top-10 differs from the torch path"
    print(f"[1] top-10, {len(db_w):,} x 64 bits, {n_query:,} queries ({torch.cuda.get_device_name()})")
    print(f"    torch matmul+topk {n_query / t_ref:12,.0f} queries/s   Triton kernels {n_query / t_ours:12,.0f} queries/s"
          f"   ratio {t_ref / t_ours:.2f}x (goal >= 2)")
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None and hasattr(faiss, "GpuIndexBinaryFlat"):
        resources = faiss.StandardGpuResources()  # kept alive while the index is used
        index = faiss.GpuIndexBinaryFlat(resources, 64)
        index.add(db_w.view(np.uint8))
        t_faiss, (dist_f, _) = best_time(lambda: index.search(q_w.view(np.uint8), 10))
        assert np.array_equal(dist_f, dist.cpu().numpy()), "distances differ from faiss"
        print(f"    faiss GpuIndexBinaryFlat {n_query / t_faiss:12,.0f} queries/s   ratio {t_faiss / t_ours:.2f}x")
    else:
        print("    faiss GpuIndexBinaryFlat: not importable here (faiss without GPU support), not measured")
    return n_query / t_ours


def full_ranking(db_w, rng, n_query):
    from fgh_tutorial.retrieval import gpu, hamming_rank, unpack_codes

    q_w = random_words(rng, n_query)
    d, q = gpu.to_device(db_w, "cuda"), gpu.to_device(q_w, "cuda")
    t_ours, ranked = best_time(synced(lambda: gpu.rank(q, d)))
    db_pm = torch.from_numpy(unpack_codes(db_w, 64)).cuda().half()
    q_pm = torch.from_numpy(unpack_codes(q_w, 64)).cuda().half()

    def stable_sort():
        dist = ((64 - q_pm @ db_pm.T) * 0.5).round().to(torch.uint8)
        return torch.sort(dist, dim=1, stable=True).indices

    t_ref, ranked_ref = best_time(synced(stable_sort))
    assert torch.equal(ranked.long(), ranked_ref), "ranking differs from torch's stable sort"
    assert np.array_equal(ranked[:2].cpu().numpy(), hamming_rank(q_w[:2], db_w)), "ranking differs from the CPU kernel"
    per_m = 1_000_000 / len(db_w)
    print(f"[2] full ranking of {len(db_w):,} codes, {n_query} queries")
    print(f"    torch stable sort {1000 * t_ref / n_query * per_m:8.4f} ms/query   counting sort "
          f"{1000 * t_ours / n_query * per_m:8.4f} ms/query per million codes   ratio {t_ref / t_ours:.2f}x")


def class_codes(rng, n_query, n_db, bits, classes):
    centres = np.where(rng.random((classes, bits)) < 0.5, -1, 1).astype(np.int8)
    ql, dl = rng.integers(0, classes, n_query), rng.integers(0, classes, n_db)
    noisy = lambda labels: (centres[labels] * np.where(rng.random((len(labels), bits)) < 0.25, -1, 1)).astype(np.int8)
    return noisy(ql), noisy(dl), ql, dl


def tie_aware_map(rng, n_query, n_db, bits, classes, check_cpu):
    from fgh_tutorial.retrieval import average_precisions, gpu, mean_average_precision, pack_codes

    qB, dB, ql, dl = class_codes(rng, n_query, n_db, bits, classes)
    t_all, m = best_time(synced(lambda: mean_average_precision(qB, dB, ql, dl, device="cuda")), repeat=2)
    qw, dw = gpu.to_device(pack_codes(qB), "cuda"), gpu.to_device(pack_codes(dB), "cuda")
    tql, tdl = torch.from_numpy(ql).cuda(), torch.from_numpy(dl).cuda()
    t_kernel, _ = best_time(synced(lambda: gpu.distance_histograms(qw, dw, tql, tdl, bits)), repeat=2)
    line = f"[3] tie-aware mAP@all, {n_query:,} x {n_db:,}, {bits} bits: {t_all:.3f} s from +-1 codes on the host"
    print(line + f" ({t_kernel:.3f} s of it in the histogram kernels), mAP {m:.4f}")
    if check_cpu:
        t_cpu, m_cpu = best_time(lambda: mean_average_precision(qB, dB, ql, dl), repeat=1)
        assert m_cpu == m, f"mAP differs from the CPU kernels: {m_cpu!r} vs {m!r}"
        print(f"    CPU kernels ({os.cpu_count()} cores) {t_cpu:.2f} s, the same mAP to the last bit   ratio {t_cpu / t_all:.1f}x")
    else:
        sub = slice(0, 20)
        same = np.array_equal(average_precisions(qB[sub], dB, ql[sub], dl, device="cuda"),
                              average_precisions(qB[sub], dB, ql[sub], dl))
        assert same, "APs differ from the CPU kernels"
        print("    APs of 20 of the queries: equal to the CPU kernels' to the last bit")
    return t_all


def bandwidth(qps, n, words=1):
    props = torch.cuda.get_device_properties(0)
    x = torch.empty(2**28, dtype=torch.int64, device="cuda")
    y = torch.empty_like(x)
    t_copy, _ = best_time(synced(lambda: y.copy_(x)))
    copy = 2 * x.numel() * 8 / t_copy
    peak = 2 * props.memory_clock_rate * 1e3 * props.memory_bus_width / 8
    read = n * 8 * words * qps
    print(f"[4] codes read by the top-10 scan: {n * 8 * words / 1e6:.0f} MB/query x {qps:,.0f} queries/s = {read / 1e12:.2f} TB/s")
    print(f"    device copy bandwidth {copy / 1e12:.2f} TB/s ({read / copy:.0%}),  peak {peak / 1e12:.2f} TB/s ({read / peak:.0%});"
          f" above 100%: the codes are served from the {props.L2_cache_size >> 20} MB L2 cache and shared by query blocks")


def interpreter_check():
    """The same kernels on CPU tensors under Triton's interpreter, against the CPU kernels."""
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is first imported
    if "triton" in sys.modules:
        print("    triton was imported before TRITON_INTERPRET could be set: interpreter check skipped")
        return
    from fgh_tutorial.retrieval import HammingIndex

    rng = np.random.default_rng(0)
    qB, dB, _, _ = class_codes(rng, 3, 200, 48, 5)
    cpu, tri = HammingIndex(48).add(dB), HammingIndex(48, backend="triton").add(dB)
    same = all(np.array_equal(a, b) for a, b in zip(cpu.search(qB, 10), tri.search(qB, 10)))
    same &= np.array_equal(cpu.rank(qB), tri.rank(qB))
    print(f"    interpreter check (3 queries x 200 codes): top-10 and ranking {'equal to' if same else 'DIFFER from'}"
          " the CPU kernels; this says nothing about speed")
    if not same:
        sys.exit(1)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=10_000)
    p.add_argument("--rank-queries", type=int, default=100)
    p.add_argument("--torch-chunk", type=int, default=1024, help="queries per matmul in the torch reference")
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA GPU present: the GPU speed is not measured here (run this script on a GPU machine).")
        interpreter_check()
        return
    rng = np.random.default_rng(0)
    db_w = random_words(rng, a.n)
    qps = topk(db_w, random_words(rng, a.queries), a.queries, a.torch_chunk)
    full_ranking(db_w, rng, a.rank_queries)
    tie_aware_map(rng, 25_250, 75_750, 48, 101, check_cpu=True)
    t = tie_aware_map(rng, 10_000, 1_000_000, 64, 1000, check_cpu=False)
    print(f"    10,000 x 1,000,000: {t:.2f} s (goal <= 2 s)")
    bandwidth(qps, a.n)


if __name__ == "__main__":
    main()
