"""The ADSH V-step (database-code update) against the official numpy update, in one run.

    python benchmarks/bench_solver.py [--n 100000] [--m 2000] [--bits 48] [--classes 200]

On a CUDA machine it also times the same function on the GPU at n = 1,000,000, against itself on
the CPU at that size. ``measure_cpu`` and ``measure_gpu`` return the figures (``gpu_check.py``).
"""
import argparse

import numpy as np
import torch

from fgh_tutorial.training.solver import update_database_codes
from fgh_tutorial.course.timing import best_time


def official_update(V, U, select_index, database_labels, code_length, gamma):
    """The official ADSH update, dense similarity included, with one-hot labels as there."""
    sample_label = database_labels[select_index]
    S = (sample_label @ database_labels.T > 0).astype(np.float64)
    r = S.sum() / (1 - S).sum()
    S = S * (1 + r) - r
    barU = np.zeros((V.shape[0], code_length))
    barU[select_index, :] = U
    Q = -2 * code_length * S.transpose().dot(U) - 2 * gamma * barU
    for k in range(code_length):
        sel_ind = np.setdiff1d([ii for ii in range(code_length)], k)
        V_ = V[:, sel_ind]
        Uk = U[:, k]
        U_ = U[:, sel_ind]
        V[:, k] = -np.sign(Q[:, k] + 2 * V_.dot(U_.transpose().dot(Uk)))
    return V


GOAL_MS = 10.0  # the V-step at n = 1,000,000, m = 2,000, 48 bits on a GPU


def problem(n, m, bits, classes, seed=0):
    """(V +-1, U in (-1, 1), sample index, labels) as numpy arrays."""
    rng = np.random.default_rng(seed)
    return (np.sign(rng.standard_normal((n, bits))), np.tanh(rng.standard_normal((m, bits))),
            rng.permutation(n)[:m], rng.integers(0, classes, n))


def measure_cpu(n=100_000, m=2000, bits=48, classes=200) -> dict:
    """update_database_codes against the official numpy update on the CPU, outputs compared."""
    V, U, index, labels = problem(n, m, bits, classes)
    onehot = np.eye(classes, dtype=np.float32)[labels]
    t_ref, v_ref = best_time(lambda: official_update(V.copy(), U, index, onehot, bits, 200.0), repeat=1)
    t_ours, v_ours = best_time(lambda: update_database_codes(V, U, index, labels, 200.0))
    return {"n": n, "m": m, "bits": bits, "classes": classes, "threads": torch.get_num_threads(), "official_s": t_ref,
            "ours_s": t_ours, "ratio": t_ref / t_ours, "equal": bool(np.array_equal(v_ours.numpy(), v_ref))}


def measure_gpu(n=1_000_000, m=2000, bits=48, classes=200, dtypes=(torch.float64, torch.float32)) -> dict:
    """The V-step on the GPU (ms per dtype) against the same function on the CPU at the same size;
    the float64 outputs are compared (float32 is timed only)."""
    V, U, index, labels = problem(n, m, bits, classes, seed=1)
    t_cpu, v_cpu = best_time(lambda: update_database_codes(V, U, index, labels, 200.0), repeat=1)
    Vg, Ug, ig, lg = (torch.from_numpy(a).cuda() for a in (V, U, index, labels))

    def gpu_step(dtype):
        out = update_database_codes(Vg, Ug, ig, lg, 200.0, dtype=dtype)
        torch.cuda.synchronize()
        return out

    out = {"n": n, "m": m, "bits": bits, "classes": classes, "cpu_s": t_cpu, "cpu_threads": torch.get_num_threads(),
           "goal_ms": GOAL_MS}
    for dtype in dtypes:
        gpu_step(dtype)
        t, v = best_time(lambda dtype=dtype: gpu_step(dtype), repeat=5)
        name = str(dtype).replace("torch.", "")
        out[f"{name}_ms"] = 1000 * t
        if dtype == torch.float64:
            differ = int((v.cpu() != v_cpu).sum())
            out.update(float64_ratio=t_cpu / t, differing_bits=differ, equal=differ == 0)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--m", type=int, default=2000)
    p.add_argument("--bits", type=int, default=48)
    p.add_argument("--classes", type=int, default=200)
    a = p.parse_args()
    r = measure_cpu(a.n, a.m, a.bits, a.classes)
    print(f"ADSH V-step, n={a.n:,}, m={a.m:,}, {a.bits} bits, {a.classes} classes, {r['threads']} CPU threads")
    print(f"official numpy update {r['official_s']:8.3f} s   update_database_codes {r['ours_s']:8.3f} s   "
          f"speed-up {r['ratio']:5.1f}x (goal >= 20)   identical output: {r['equal']}")
    if torch.cuda.is_available():
        g = measure_gpu(1_000_000, a.m, a.bits, a.classes)
        for name in ("float64", "float32"):
            print(f"GPU, n={g['n']:,}, {name}: {g[name + '_ms']:.2f} ms (goal <= {GOAL_MS:g} ms)")
        print(f"CPU, the same function at n={g['n']:,} ({g['cpu_threads']} threads): {g['cpu_s']:.3f} s, "
              f"{g['float64_ratio']:.0f}x the GPU's float64 time; float64 outputs identical: {g['equal']}")
    else:
        print("no CUDA device here: the GPU goal (n = 1,000,000 in <= 10 ms) is not measured")


if __name__ == "__main__":
    main()
