"""The stages of ``gpu_check.py``: each runs in its own process (``gpu_check.py --stage NAME``) and
writes OUT/.NAME.json: its figures (value, unit, the reference measured in the same run, goal, met),
its checks (ok, detail) and, for ``env``, the device. The speed figures come from the benchmark
scripts' own functions; the end-to-end runs are in ``gpu_check_runs.py``.

    env          the device, the versions, one CUDA operation
    compile      the Triton kernels compiled for the device (without CUDA: for sm_90, not launched):
                 hardware popcount in the PTX, registers and spilled bytes per thread
    correctness  GPU against CPU kernels: top-k, full ranking, tie-aware APs, codes with many ties,
                 12 to 128 bits (``interpreter``: the same under TRITON_INTERPRET=1, small sizes)
    tests        the GPU-only tests, kernels compiled: tests/test_gpu_kernels.py, test_gpu_paths.py
    cpu_kernels  the compiled CPU kernels against numpy, and the V-step against the official update
    retrieval    top-10, full ranking and tie-aware mAP@all at 1M codes (bench_gpu_retrieval.py)
    solver       the V-step at n = 1M on the GPU against the CPU (bench_solver.py)
    train        the full FCAENet step against a bare step, ResNet-50, 448 px (bench_train_step.py)
    e2e, torchrun  see gpu_check_runs.py
"""
from __future__ import annotations

import json
import os
import platform
import sys
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BITS = (12, 24, 32, 48, 64, 128)


class Stage:
    def __init__(self, work: Path, cuda: bool):
        self.work, self.cuda, self.figures, self.checks, self.extra = work, cuda, [], [], {}
        self.work.mkdir(parents=True, exist_ok=True)

    def figure(self, name, value, unit="", reference=None, ratio=None, goal=None, met=None):
        self.figures.append({"name": name, "value": value, "unit": unit, "reference": reference, "ratio": ratio,
                             "goal": goal, "met": met})

    def check(self, name, ok, detail=""):
        self.checks.append({"name": name, "ok": bool(ok), "detail": detail})
        print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)


# ---------------------------------------------------------------- env, compile
def env(st: Stage):
    import torch
    import triton

    info = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "triton": triton.__version__, "numpy": np.__version__, "cpus": os.cpu_count(), "machine": platform.machine()}
    st.extra.update(cuda=st.cuda, environment=info)
    if st.cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(gpus=torch.cuda.device_count(), capability=f"{props.major}.{props.minor}",
                    memory_gb=round(props.total_memory / 2**30, 1), multiprocessors=props.multi_processor_count)
        st.extra["device"] = torch.cuda.get_device_name(0) + (f" (x{info['gpus']})" if info["gpus"] > 1 else "")
        st.check("a CUDA operation runs", int((torch.arange(10, device="cuda") * 2).sum()) == 90)
    else:
        st.extra["device"] = f"no CUDA device ({platform.machine()} CPU, {os.cpu_count()} cores)"


def _resources(cubin: bytes, work: Path):
    """(registers, local bytes) per thread from cuobjdump (Triton's own, else the PATH's), or Nones."""
    import shutil
    import subprocess

    import triton

    tool = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "cuobjdump"
    tool = str(tool) if tool.exists() else shutil.which("cuobjdump")
    if not tool:
        return None, None
    path = work / "kernel.cubin"
    path.write_bytes(cubin)
    text = subprocess.run([tool, "--dump-resource-usage", str(path)], capture_output=True, text=True).stdout
    found = dict((k, int(v)) for k, v in __import__("re").findall(r"\b(REG|LOCAL):(\d+)", text))
    return found.get("REG"), found.get("LOCAL")


def compile_kernels(st: Stage):
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from fgh_tutorial.retrieval import gpu, gpu_kernels as K

    target = triton.runtime.driver.active.get_current_target() if st.cuda else GPUTarget("cuda", 90, 32)
    st.extra["target"] = f"{target.backend} {target.arch}"
    hist_sig = ["*i64", "*i64", "*i64", "*i64", "*i32", "i32", "i32", "i32"]
    place_sig = ["*i64", "*i64", "*i32", "*i32", None, None, "i32", "i32", "i32", "i32"]
    variants = []
    for bits, labels in ((64, 0), (48, 1), (128, 2)):
        w, nb = -(-bits // 64), gpu._nb(-(-bits // 64))
        variants.append((f"histogram, {bits} bits, {('no', 'class', 'multi-hot')[labels]} labels", K.histogram_kernel, hist_sig,
                         dict(W=w, WP=gpu.next_pow2(w), NB=nb, NBINS=nb * (2 if labels else 1), LABELS=labels, LW=2 if labels == 2 else 1,
                              LWP=2 if labels == 2 else 1, BLOCK_Q=4, BLOCK_N=1024, HW=True)))
    for bits, dist in ((64, True), (128, False)):
        w, nb = -(-bits // 64), gpu._nb(-(-bits // 64))
        sig = place_sig[:4] + (["*i64", "*i32"] if dist else ["*i32", "*i32"]) + place_sig[6:]
        variants.append((f"placement, {bits} bits, {'top-k' if dist else 'full ranking'}", K.place_kernel, sig,
                         dict(W=w, WP=gpu.next_pow2(w), NB=nb, WRITE_DIST=dist, BLOCK_N=min(1024, 8192 // nb), HW=True)))
    for name, fn, sig, consts in variants:
        names = list(fn.arg_names)
        signature = {n: (sig[i] if i < len(sig) else "constexpr") for i, n in enumerate(names)}
        c = triton.compile(ASTSource(fn, signature, consts), target=target)
        if target.backend == "cuda":
            st.check(f"{name}: hardware popcount (popc.b64) in the PTX", "popc.b64" in c.asm["ptx"])
            regs, local = _resources(c.asm["cubin"], st.work)
            st.figure(f"{name} kernel (sm_{target.arch}): registers", regs, "per thread")
            st.figure(f"{name} kernel: spilled bytes", local, "per thread", goal="0", met=None if local is None else local == 0)


# ---------------------------------------------------------------- GPU results against the CPU's
def tied_codes(rng, n, bits, pool=8, flip=0.05):
    """n codes from a pool of ``pool`` codes with a few bits flipped: many equal distances."""
    base = np.where(rng.random((pool, bits)) < 0.5, 1, -1)[rng.integers(pool, size=n)]
    return np.where(rng.random((n, bits)) < flip, -base, base).astype(np.int8)


def compare(st: Stage, device, n, n_query, n_rank, ks):
    """Top-k, full ranking and tie-aware APs of the Triton kernels on ``device`` against the CPU kernels."""
    import torch

    from fgh_tutorial.retrieval import HammingIndex, gpu, hamming_rank, hamming_topk, metrics, pack_codes

    rng = np.random.default_rng(0)
    size = f"{n_query} queries x {n:,} codes"
    for bits in BITS:
        db = tied_codes(rng, n, bits)
        q = np.concatenate([db[:1], tied_codes(rng, n_query - 1, bits)])
        qw, dw = pack_codes(q), pack_codes(db)
        tq, td = gpu.to_device(qw, device), gpu.to_device(dw, device)
        same = []
        for k in ks:
            (gd, gi), (cd, ci) = gpu.topk(tq, td, k), hamming_topk(qw, dw, k)
            same.append(np.array_equal(gi.cpu().numpy(), ci) and np.array_equal(gd.cpu().numpy(), cd))
        distinct = np.median([len(np.unique(row)) for row in hamming_topk(qw, dw, n)[0]])
        st.check(f"top-k equal, {bits} bits", all(same), f"k in {ks}, {size}, median {distinct:.0f} distinct distances per query")
        ranked = gpu.rank(tq[:n_rank], td).cpu().numpy()
        st.check(f"full ranking equal, {bits} bits", np.array_equal(ranked, hamming_rank(qw[:n_rank], dw)), f"{n_rank} queries")
        ql, dl = rng.integers(0, 10, n_query), rng.integers(0, 10, n)
        aps = (metrics.average_precisions(q, db, ql, dl, device=device) if device.type == "cuda" else
               metrics.expected_ap_from_histograms(*metrics._gpu_histograms(q, db, ql, dl, device)))
        st.check(f"tie-aware APs equal to the last bit, {bits} bits", np.array_equal(aps, metrics.average_precisions(q, db, ql, dl)), size)
    db, q = tied_codes(rng, n, 48), tied_codes(rng, n_query, 48)
    (qw, dw), lay = (pack_codes(q), pack_codes(db)), dict(block_n=64, splits=7, budget=1)
    tq, td = gpu.to_device(qw, device), gpu.to_device(dw, device)
    (gd, gi), (cd, ci) = gpu.topk(tq, td, 10, **lay), hamming_topk(qw, dw, 10)
    st.check("top-10 equal with 7 splits, one query per chunk",
             np.array_equal(gi.cpu().numpy(), ci) and np.array_equal(gd.cpu().numpy(), cd))
    ql, dl = (rng.random((n_query, 70)) < 0.05).astype(np.int64), (rng.random((n, 70)) < 0.05).astype(np.int64)
    counts, rel = metrics._gpu_histograms(q, db, ql, dl, device)
    ref = metrics.distance_histograms(q, db, ql, dl)
    st.check("multi-hot label histograms equal (70 labels)", np.array_equal(counts, ref[0]) and np.array_equal(rel, ref[1]))
    tri, cpu = HammingIndex(48, backend="triton", device=device).add(db), HammingIndex(48).add(db)
    queries = torch.as_tensor(q, device=device)
    host = lambda x: x.cpu().numpy() if isinstance(x, torch.Tensor) else x  # CUDA tensors for CUDA queries
    (gd, gi), (cd, ci) = tri.search(queries, 10), cpu.search(q, 10)
    ok = np.array_equal(host(gi), ci) and np.array_equal(host(gd), cd)
    ok &= np.array_equal(host(tri.rank(queries[:n_rank])), cpu.rank(q[:n_rank]))
    st.check(f"HammingIndex on {device.type} tensors equal to the CPU index", ok)


def correctness(st: Stage):
    import torch

    compare(st, torch.device("cuda"), 200_003, 61, 8, (1, 10, 1000))


def interpreter(st: Stage):
    import torch

    from fgh_tutorial.retrieval import gpu

    st.check("Triton runs interpreted (TRITON_INTERPRET=1)", gpu.interpreted())
    compare(st, torch.device("cpu"), 150, 3, 3, (1, 10, 150))


def cpu_kernels(st: Stage):
    from bench_solver import measure_cpu

    from fgh_tutorial.retrieval import hamming_distances, hamming_rank, hamming_topk, metrics, pack_codes

    rng = np.random.default_rng(1)
    for bits in (12, 48, 128):
        db, q = tied_codes(rng, 3000, bits), tied_codes(rng, 5, bits)
        qw, dw = pack_codes(q), pack_codes(db)
        dist = hamming_distances(qw, dw)  # numpy's bitwise_count, not the compiled kernels
        order = np.array([np.lexsort((np.arange(len(db)), row)) for row in dist])
        d, i = hamming_topk(qw, dw, 10)
        ok = np.array_equal(i, order[:, :10]) and np.array_equal(d, np.take_along_axis(dist, order[:, :10], 1))
        st.check(f"compiled top-10 and ranking equal to numpy's, {bits} bits", ok and np.array_equal(hamming_rank(qw, dw), order))
        ql, dl = rng.integers(0, 6, 5), rng.integers(0, 6, 3000)
        onehot = lambda y: np.eye(6, dtype=np.int64)[y]  # multi-hot rows take the dense numpy path
        same = np.array_equal(metrics.average_precisions(q, db, ql, dl), metrics.average_precisions(q, db, onehot(ql), onehot(dl)))
        st.check(f"compiled tie-aware APs equal to the numpy path's, {bits} bits", same)
    r = measure_cpu(n=4000, m=400, bits=48, classes=50)
    st.check("V-step equal to the official numpy update", r["equal"], f"n = {r['n']}, m = {r['m']}")


def tests(st: Stage):
    import subprocess

    junit = st.work / "junit.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval", "tests/test_gpu_kernels.py",
           "tests/test_gpu_paths.py", "-k", "not under_the_interpreter", f"--junitxml={junit}"]
    code = subprocess.run(cmd, cwd=REPO).returncode
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    n, failed = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
    skipped = int(suite.get("skipped"))
    st.figure("GPU-only tests passed (kernels compiled)", n - failed - skipped, "tests")
    st.check("the GPU tests pass", code == 0 and failed == 0, f"{n - failed - skipped} passed, {failed} failed")
    st.check("no GPU test was skipped", skipped == 0, f"{skipped} skipped")


# ---------------------------------------------------------------- speed, each against its reference
def retrieval(st: Stage):
    from bench_gpu_retrieval import (GOALS, measure_bandwidth, measure_full_ranking, measure_map, measure_topk,
                                     random_words)

    rng = np.random.default_rng(0)
    db = random_words(rng, 1_000_000)
    t = measure_topk(db, random_words(rng, 10_000))
    st.figure("top-10, 1M x 64-bit codes, 10,000 queries (torch matmul+topk)", t["ours_qps"], "queries/s", t["torch_qps"],
              t["ratio"], f">= {GOALS['topk_ratio']:g}x", t["ratio"] >= GOALS["topk_ratio"])
    st.check("top-10 equal to the torch path's", t["equal"])
    r = measure_full_ranking(db, random_words(rng, 100))
    st.figure("full ranking of 1M codes (torch stable sort)", r["ours_ms_per_query_per_million"], "ms/query",
              r["torch_ms_per_query_per_million"], r["ratio"])
    st.check("full ranking equal to the stable sort's and the CPU kernel's", r["equal"])
    m = measure_map(rng, 10_000, 1_000_000, 64, 1000, check_cpu=False)
    st.figure("tie-aware mAP@all, 10,000 x 1,000,000, 64 bits", m["seconds"], "s", goal=f"<= {GOALS['map_seconds']:g} s",
              met=m["seconds"] <= GOALS["map_seconds"])
    st.figure("  of it in the histogram kernels", m["kernel_seconds"], "s")
    st.check("tie-aware APs equal to the CPU kernels' (20 queries)", m["equal"])
    b = measure_bandwidth(t["ours_qps"], 1_000_000)
    st.figure("codes read by the top-10 scan (device copy)", b["codes_read_tb_s"], "TB/s", b["copy_tb_s"])


def solver(st: Stage):
    from bench_solver import GOAL_MS, measure_gpu

    g = measure_gpu(1_000_000, 2000, 48, 200)
    st.figure("ADSH V-step, n=1M, m=2,000, 48 bits, float64 (CPU)", g["float64_ms"], "ms", 1000 * g["cpu_s"],
              g["float64_ratio"], f"<= {GOAL_MS:g} ms", g["float64_ms"] <= GOAL_MS)
    st.figure("  the same in float32", g["float32_ms"], "ms")
    st.check("V-step on the GPU equal to the CPU's (float64)", g["equal"], f"{g['differing_bits']} bits differ")


def train(st: Stage):
    from bench_train_step import measure

    r = measure(448, 64, 10, 48, "resnet50")
    st.figure("FCAENet step, ResNet-50 448 px bf16, JPEGs (bare step)", r["full_views_s"], "views/s", r["bare_images_s"],
              r["ratio"], f">= {r['goal']:g}x", r["ratio"] >= r["goal"])
    st.figure(f"  V-step after the epoch (n = {r['n']})", r["v_step_ms"], "ms")


STAGES = {"env": env, "compile": compile_kernels, "correctness": correctness, "interpreter": interpreter,
          "cpu_kernels": cpu_kernels, "tests": tests, "retrieval": retrieval, "solver": solver, "train": train}


def run_one(name: str, out: Path, cpu_only: bool) -> int:
    """Run stage ``name``; write OUT/.name.json; 0, or 1 when it raised (the traceback goes to the log)."""
    import torch

    from gpu_check_runs import RUNS

    st = Stage(out / "work" / name, torch.cuda.is_available() and not cpu_only)
    status, error = "passed", None
    try:
        {**STAGES, **RUNS}[name](st)
    except Exception as err:  # noqa: BLE001 - reported as this stage's failure, the other stages still run
        traceback.print_exc()
        status, error = "error", f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else ''}"
    result = {"status": status, "error": error, "figures": st.figures, "checks": st.checks, **st.extra}
    tmp = out / f".{name}.json.tmp"
    tmp.write_text(json.dumps(result, default=float))
    os.replace(tmp, out / f".{name}.json")
    return 0 if status == "passed" else 1


def ddp_driver(argv):
    from gpu_check_runs import ddp_driver as driver

    return driver(argv)
