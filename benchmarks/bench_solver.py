"""The ADSH V-step (database-code update) against the official numpy update, in one run.

    python benchmarks/bench_solver.py [--n 100000] [--m 2000] [--bits 48] [--classes 200]

On a CUDA machine it also times the same function on the GPU at n = 1,000,000.
"""
import argparse

import numpy as np
import torch

from fgh_tutorial.retrieval import hard_sign
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


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--m", type=int, default=2000)
    p.add_argument("--bits", type=int, default=48)
    p.add_argument("--classes", type=int, default=200)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    V = np.sign(rng.standard_normal((a.n, a.bits)))
    U = np.tanh(rng.standard_normal((a.m, a.bits)))
    index = rng.permutation(a.n)[:a.m]
    labels = rng.integers(0, a.classes, a.n)
    onehot = np.eye(a.classes, dtype=np.float32)[labels]

    t_ref, v_ref = best_time(lambda: official_update(V.copy(), U, index, onehot, a.bits, 200.0), repeat=1)
    t_ours, v_ours = best_time(lambda: update_database_codes(V, U, index, labels, 200.0))
    same = np.array_equal(v_ours.numpy(), v_ref)
    print(f"ADSH V-step, n={a.n:,}, m={a.m:,}, {a.bits} bits, {a.classes} classes, {torch.get_num_threads()} CPU threads")
    print(f"official numpy update {t_ref:8.3f} s   update_database_codes {t_ours:8.3f} s   "
          f"speed-up {t_ref / t_ours:5.1f}x (goal >= 20)   identical output: {same}")
    if torch.cuda.is_available():
        n = 1_000_000
        Vg = hard_sign(torch.randn(n, a.bits, device="cuda"))
        Ug = torch.tanh(torch.randn(a.m, a.bits, device="cuda"))
        ig = torch.randperm(n, device="cuda")[:a.m]
        lg = torch.randint(0, a.classes, (n,), device="cuda")

        def gpu_step(dtype):
            out = update_database_codes(Vg, Ug, ig, lg, 200.0, dtype=dtype)
            torch.cuda.synchronize()
            return out

        for dtype in (torch.float64, torch.float32):
            gpu_step(dtype)
            t, _ = best_time(lambda: gpu_step(dtype), repeat=5)
            print(f"GPU, n={n:,}, {dtype}: {1000 * t:.2f} ms (goal <= 10 ms)")
    else:
        print("no CUDA device here: the GPU goal (n = 1,000,000 in <= 10 ms) is not measured")


if __name__ == "__main__":
    main()
