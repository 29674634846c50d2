"""mAP@all at CUB sizes: the library's tie-aware and stable mAP against the usual per-query
argsort loop, measured in one run. Prints the speed ratios.

    python benchmarks/bench_map.py [--queries 5794] [--database 5994] [--bits 48]
"""
import argparse
import numpy as np

from fgh_tutorial.retrieval.metrics import mean_average_precision
from fgh_tutorial.course.timing import best_time


def reference_map(qB, rB, query_labels, retrieval_labels):
    """The usual evaluation loop of deep-hashing code bases: one argsort per query."""
    num_query = qB.shape[0]
    total = 0.0
    for i in range(num_query):
        gnd = (query_labels[i] == retrieval_labels).astype(np.float32)
        tsum = np.sum(gnd)
        if tsum == 0:
            continue
        hamm = 0.5 * (qB.shape[1] - np.dot(qB[i, :], rB.transpose()))
        ind = np.argsort(hamm)
        gnd = gnd[ind]
        count = np.linspace(1, tsum, int(tsum))
        tindex = np.asarray(np.where(gnd == 1)) + 1.0
        total += np.mean(count / tindex)
    return total / num_query


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--queries", type=int, default=5794)
    p.add_argument("--database", type=int, default=5994)
    p.add_argument("--bits", type=int, default=48)
    p.add_argument("--classes", type=int, default=200)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    # codes correlated with labels, like a trained model's: class centre plus flipped bits
    centres = np.where(rng.random((a.classes, a.bits)) < 0.5, -1.0, 1.0)
    ql, dl = rng.integers(0, a.classes, a.queries), rng.integers(0, a.classes, a.database)
    flip = lambda n: np.where(rng.random((n, a.bits)) < 0.3, -1.0, 1.0)
    qB, rB = centres[ql] * flip(a.queries), centres[dl] * flip(a.database)

    mean_average_precision(qB[:2], rB[:10], ql[:2], dl[:10])  # compile the kernels first
    t_ref, m_ref = best_time(lambda: reference_map(qB, rB, ql, dl), repeat=1)
    t_exp, m_exp = best_time(lambda: mean_average_precision(qB, rB, ql, dl, "expected"))
    t_sta, m_sta = best_time(lambda: mean_average_precision(qB, rB, ql, dl, "stable"))
    print(f"{a.queries} queries x {a.database} database codes, {a.bits} bits")
    print(f"reference argsort loop : {t_ref:8.3f} s   mAP {m_ref:.4f}")
    print(f"tie-aware (expected)   : {t_exp:8.3f} s   mAP {m_exp:.4f}   speed-up {t_ref / t_exp:6.1f}x")
    print(f"legacy (stable ties)   : {t_sta:8.3f} s   mAP {m_sta:.4f}   speed-up {t_ref / t_sta:6.1f}x")


if __name__ == "__main__":
    main()
