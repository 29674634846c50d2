"""Packed Hamming retrieval on a GPU (the Triton kernels of ``retrieval.gpu``), each against a
reference measured in the same run, results checked equal (a difference exits non-zero). The
``measure_*`` functions return their figures as dicts; ``benchmarks/gpu_check.py`` calls them too.

1. top-10 over 1,000,000 x 64-bit codes, 10,000 queries: queries/s against the torch matmul +
   topk path (``hamming_topk_torch``) and faiss's GpuIndexBinaryFlat when faiss has GPU support;
   goal: at least 5x the torch path
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

GOALS = {"topk_ratio": 5.0, "map_seconds": 2.0}  # top-10: at least 5x the torch path; mAP 10,000 x 1M: within 2 s


def synced(fn):
    def run():
        out = fn()
        torch.cuda.synchronize()
        return out
    run()  # compile and warm up
    return run


def random_words(rng, n, words=1):
    return rng.integers(0, 2**64, size=(n, words), dtype=np.uint64)


def _signs(words, bits=64):
    from fgh_tutorial.retrieval import unpack_codes

    return torch.from_numpy(unpack_codes(words, bits)).cuda().half()


def measure_topk(db_w, q_w, torch_chunk=1024, k=10) -> dict:
    """Top-k of the Triton kernels and of the torch matmul + topk path (its chunks within half the
    free device memory), checked equal; queries/s of each, and of faiss's GPU index when there is one."""
    from fgh_tutorial.retrieval import gpu, hamming_topk_torch

    n_query = len(q_w)
    d, q = gpu.to_device(db_w, "cuda"), gpu.to_device(q_w, "cuda")
    t_ours, (dist, idx) = best_time(synced(lambda: gpu.topk(q, d, k)))
    db_pm, q_pm = _signs(db_w), _signs(q_w)
    budget = torch.cuda.mem_get_info()[0] // 2
    t_ref, (dist_ref, idx_ref) = best_time(synced(lambda: hamming_topk_torch(q_pm, db_pm, k, torch_chunk, budget)))
    out = {"n": len(db_w), "queries": n_query, "k": k, "ours_qps": n_query / t_ours, "torch_qps": n_query / t_ref,
           "ratio": t_ref / t_ours, "goal": GOALS["topk_ratio"],
           "equal": bool(torch.equal(idx, idx_ref) and torch.equal(dist.long(), dist_ref)), "faiss_qps": None}
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None and hasattr(faiss, "GpuIndexBinaryFlat"):
        resources = faiss.StandardGpuResources()  # kept alive while the index is used
        index = faiss.GpuIndexBinaryFlat(resources, 64)
        index.add(db_w.view(np.uint8))
        t_faiss, (dist_f, _) = best_time(lambda: index.search(q_w.view(np.uint8), k))
        out["faiss_qps"] = n_query / t_faiss
        out["equal"] &= bool(np.array_equal(dist_f, dist.cpu().numpy()))
    return out


def measure_full_ranking(db_w, q_w) -> dict:
    """The counting-sort ranking against torch's stable sort of the matmul distances (and two
    queries against the CPU kernel), checked equal."""
    from fgh_tutorial.retrieval import gpu, hamming_rank

    n_query = len(q_w)
    d, q = gpu.to_device(db_w, "cuda"), gpu.to_device(q_w, "cuda")
    t_ours, ranked = best_time(synced(lambda: gpu.rank(q, d)))
    db_pm, q_pm = _signs(db_w), _signs(q_w)

    def stable_sort():
        dist = ((64 - q_pm @ db_pm.T) * 0.5).round().to(torch.uint8)
        return torch.sort(dist, dim=1, stable=True).indices

    t_ref, ranked_ref = best_time(synced(stable_sort))
    equal = torch.equal(ranked.long(), ranked_ref) and np.array_equal(ranked[:2].cpu().numpy(), hamming_rank(q_w[:2], db_w))
    per_m = 1_000_000 / len(db_w)
    return {"n": len(db_w), "queries": n_query, "ours_ms_per_query_per_million": 1000 * t_ours / n_query * per_m,
            "torch_ms_per_query_per_million": 1000 * t_ref / n_query * per_m, "ratio": t_ref / t_ours, "equal": bool(equal)}


def class_codes(rng, n_query, n_db, bits, classes):
    centres = np.where(rng.random((classes, bits)) < 0.5, -1, 1).astype(np.int8)
    ql, dl = rng.integers(0, classes, n_query), rng.integers(0, classes, n_db)
    noisy = lambda labels: (centres[labels] * np.where(rng.random((len(labels), bits)) < 0.25, -1, 1)).astype(np.int8)
    return noisy(ql), noisy(dl), ql, dl


def measure_map(rng, n_query, n_db, bits, classes, check_cpu) -> dict:
    """Tie-aware mAP@all on the GPU from +-1 codes on the host (and the histogram kernels'
    share); checked against the CPU kernels: the whole mAP (``check_cpu``), else 20 queries' APs."""
    from fgh_tutorial.retrieval import average_precisions, gpu, mean_average_precision, pack_codes

    qB, dB, ql, dl = class_codes(rng, n_query, n_db, bits, classes)
    t_all, m = best_time(synced(lambda: mean_average_precision(qB, dB, ql, dl, device="cuda")), repeat=2)
    qw, dw = gpu.to_device(pack_codes(qB), "cuda"), gpu.to_device(pack_codes(dB), "cuda")
    tql, tdl = torch.from_numpy(ql).cuda(), torch.from_numpy(dl).cuda()
    t_kernel, _ = best_time(synced(lambda: gpu.distance_histograms(qw, dw, tql, tdl, bits)), repeat=2)
    out = {"queries": n_query, "n": n_db, "bits": bits, "seconds": t_all, "kernel_seconds": t_kernel, "map": m}
    if check_cpu:
        t_cpu, m_cpu = best_time(lambda: mean_average_precision(qB, dB, ql, dl), repeat=1)
        out.update(cpu_seconds=t_cpu, cpu_cores=os.cpu_count(), ratio=t_cpu / t_all, equal=bool(m_cpu == m), checked="mAP")
    else:
        sub = slice(0, 20)
        out.update(checked="APs of 20 queries", equal=bool(np.array_equal(
            average_precisions(qB[sub], dB, ql[sub], dl, device="cuda"), average_precisions(qB[sub], dB, ql[sub], dl))))
    return out


def measure_bandwidth(qps, n, words=1) -> dict:
    props = torch.cuda.get_device_properties(0)
    x = torch.empty(2**28, dtype=torch.int64, device="cuda")
    y = torch.empty_like(x)
    t_copy, _ = best_time(synced(lambda: y.copy_(x)))
    return {"codes_read_tb_s": n * 8 * words * qps / 1e12, "copy_tb_s": 2 * x.numel() * 8 / t_copy / 1e12,
            "peak_tb_s": 2 * props.memory_clock_rate * 1e3 * props.memory_bus_width / 8 / 1e12,
            "l2_mb": props.L2_cache_size >> 20, "mb_per_query": n * 8 * words / 1e6}


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
    t = measure_topk(db_w, random_words(rng, a.queries), a.torch_chunk)
    print(f"[1] top-10, {a.n:,} x 64 bits, {a.queries:,} queries ({torch.cuda.get_device_name()})")
    print(f"    torch matmul+topk {t['torch_qps']:12,.0f} queries/s   Triton kernels {t['ours_qps']:12,.0f} queries/s"
          f"   ratio {t['ratio']:.2f}x (goal >= {GOALS['topk_ratio']:g})")
    print(f"    faiss GpuIndexBinaryFlat {t['faiss_qps']:12,.0f} queries/s" if t["faiss_qps"] else
          "    faiss GpuIndexBinaryFlat: not importable here (faiss without GPU support), not measured")
    r = measure_full_ranking(db_w, random_words(rng, a.rank_queries))
    print(f"[2] full ranking of {a.n:,} codes, {a.rank_queries} queries")
    print(f"    torch stable sort {r['torch_ms_per_query_per_million']:8.4f} ms/query   counting sort "
          f"{r['ours_ms_per_query_per_million']:8.4f} ms/query per million codes   ratio {r['ratio']:.2f}x")
    maps = [measure_map(rng, 25_250, 75_750, 48, 101, check_cpu=True), measure_map(rng, 10_000, 1_000_000, 64, 1000, check_cpu=False)]
    for m in maps:
        print(f"[3] tie-aware mAP@all, {m['queries']:,} x {m['n']:,}, {m['bits']} bits: {m['seconds']:.3f} s from +-1 codes "
              f"on the host ({m['kernel_seconds']:.3f} s of it in the histogram kernels), mAP {m['map']:.4f}; "
              f"{m['checked']} {'equal to' if m['equal'] else 'DIFFER from'} the CPU kernels'"
              + (f"; CPU {m['cpu_seconds']:.2f} s on {m['cpu_cores']} cores, ratio {m['ratio']:.1f}x" if "ratio" in m else ""))
    print(f"    10,000 x 1,000,000: {maps[1]['seconds']:.2f} s (goal <= {GOALS['map_seconds']:g} s)")
    b = measure_bandwidth(t["ours_qps"], a.n)
    print(f"[4] codes read by the top-10 scan: {b['mb_per_query']:.0f} MB/query = {b['codes_read_tb_s']:.2f} TB/s; device copy "
          f"bandwidth {b['copy_tb_s']:.2f} TB/s, peak {b['peak_tb_s']:.2f} TB/s; above 100%: the codes are served from "
          f"the {b['l2_mb']} MB L2 cache and shared by query blocks")
    if not (t["equal"] and r["equal"] and all(m["equal"] for m in maps)):
        sys.exit("a GPU result differs from its reference (see above)")


if __name__ == "__main__":
    main()
