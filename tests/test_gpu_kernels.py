"""The Triton kernels of ``retrieval.gpu`` against the CPU kernels and brute force: top-k, full
ranking, distance histograms, tie-aware AP and the GPU dispatch of ``HammingIndex`` and the
metrics. On the CPU Triton's interpreter runs them; with CUDA they also run compiled, on the GPU.

The interpreter must be chosen before triton is first imported (its own ``tl.sum`` & co. are
built then), and in a full session torchvision has long imported it. So the interpreted tests
run in a child pytest with ``TRITON_INTERPRET=1`` (``test_kernels_under_the_interpreter``), and
nothing else in the session runs interpreted. ``TRITON_INTERPRET=1 pytest tests/test_gpu_kernels.py``
runs them directly. With CUDA (and no interpreter) the same tests run in this session on the
GPU, with fewer random examples (each new shape compiles kernels); ``make gpu-check`` runs them so.
"""
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("triton", reason="the GPU kernels need triton (it ships with torch's CUDA wheels on Linux)")
torch = pytest.importorskip("torch")

from fgh_tutorial.retrieval import HammingIndex, gpu, hamming_rank, hamming_topk, metrics, pack_codes  # noqa: E402

pytestmark = pytest.mark.gpu

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
COMPILED = not INTERPRETED and torch.cuda.is_available()  # the kernels compiled, on the GPU
child_only = pytest.mark.skipif(not (INTERPRETED or COMPILED), reason="run by test_kernels_under_the_interpreter "
                                "in a child pytest with TRITON_INTERPRET=1 (or here, compiled, with CUDA)")


@pytest.mark.slow
@pytest.mark.skipif(INTERPRETED, reason="this is the child run")
def test_kernels_under_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:nbval", __file__],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout and "skipped" in run.stdout  # the child ran the tests, skipped this one


CPU = torch.device("cpu")
DEVICE = torch.device("cuda") if COMPILED else CPU  # where the kernels run
if INTERPRETED:
    assert gpu.interpreted()
BITS = [12, 24, 32, 48, 64, 128]
# (block_n, splits, budget): one tile; several tiles per split and several splits; one query per chunk
LAYOUTS = [dict(), dict(block_n=16, splits=2), dict(block_n=8, splits=5, budget=1)]


def brute_distances(qw, dw):
    """popcount(q XOR b) word by word with Python's integers: independent of both kernels."""
    return np.array([[sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(x, y)) for y in dw] for x in qw])


def tied_codes(rng, n, bits, pool):
    """n codes drawn from a pool of `pool` codes, a few bits flipped: many equal distances."""
    base = np.where(rng.random((pool, bits)) < 0.5, 1, -1)[rng.integers(pool, size=n)]
    flip = rng.random((n, bits)) < 0.05
    return np.where(flip, -base, base).astype(np.int8)


def words(codes):
    packed = pack_codes(codes)
    return packed, gpu.to_device(packed, DEVICE)


@child_only
@pytest.mark.parametrize("bits", BITS)
@settings(max_examples=5 if INTERPRETED else 2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_topk_rank_histograms_equal_cpu_and_brute_force(bits, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    n, nq = data.draw(st.integers(1, 40), label="n"), data.draw(st.integers(1, 3), label="queries")
    layout = data.draw(st.sampled_from(LAYOUTS), label="layout")
    pool = data.draw(st.integers(1, 6), label="pool")
    db = tied_codes(rng, n, bits, pool)
    q = np.concatenate([db[rng.integers(n, size=nq)][:1], tied_codes(rng, nq, bits, pool)])[:nq]
    (qw, tq), (dw, td) = words(q), words(db)
    dist = brute_distances(qw, dw)
    order = np.array([np.lexsort((np.arange(n), row)) for row in dist])  # by distance, then index
    for k in sorted({1, 10, n}):
        gd, gi = gpu.topk(tq, td, k, **layout)
        cd, ci = hamming_topk(qw, dw, k)
        kk = min(k, n)
        assert gd.dtype == torch.int32 and gi.dtype == torch.int64 and gi.shape == (nq, kk)
        assert gi.device == gd.device == tq.device
        gi, gd = gi.cpu().numpy(), gd.cpu().numpy()
        np.testing.assert_array_equal(gi, ci)
        np.testing.assert_array_equal(gd, cd)
        np.testing.assert_array_equal(gi, order[:, :kk])
        np.testing.assert_array_equal(gd, np.take_along_axis(dist, order[:, :kk], 1))
    ranked = gpu.rank(tq, td, **layout)
    assert ranked.dtype == torch.int32
    np.testing.assert_array_equal(ranked.cpu().numpy(), hamming_rank(qw, dw))
    np.testing.assert_array_equal(ranked.cpu().numpy(), order)
    ql, dl = rng.integers(0, 3, nq), rng.integers(0, 3, n)
    counts, rel = gpu.distance_histograms(tq, td, torch.from_numpy(ql).to(DEVICE), torch.from_numpy(dl), bits, **layout)
    cc, cr = metrics.distance_histograms(q, db, ql, dl)
    np.testing.assert_array_equal(counts.cpu().numpy(), cc)
    np.testing.assert_array_equal(rel.cpu().numpy(), cr)
    for i in range(nq):
        np.testing.assert_array_equal(cc[i], np.bincount(dist[i], minlength=bits + 1))
        np.testing.assert_array_equal(cr[i], np.bincount(dist[i][dl == ql[i]], minlength=bits + 1))


@child_only
def test_popcount_of_edge_words():
    """The SWAR popcount on words with the sign bit set, alternating bits, all ones, zero."""
    edges = np.array([0, 1, 2**63, 2**64 - 1, 0x5555555555555555, 0xAAAAAAAAAAAAAAAA, 0x8000000000000001,
                      0x0101010101010101, 0xFF00FF00FF00FF00], dtype=np.uint64)
    rng = np.random.default_rng(3)
    dw = np.stack([edges, rng.integers(0, 2**64, len(edges), dtype=np.uint64, endpoint=False)], 1)
    qw = np.array([[0, 0], [2**64 - 1, 2**63]], dtype=np.uint64)
    td, tq = gpu.to_device(dw, DEVICE), gpu.to_device(qw, DEVICE)
    dist, idx = gpu.topk(tq, td, len(dw))
    want = brute_distances(qw, dw)
    np.testing.assert_array_equal(np.take_along_axis(want, idx.cpu().numpy(), 1), dist.cpu().numpy())
    np.testing.assert_array_equal(gpu.rank(tq, td).cpu().numpy(), hamming_rank(qw, dw))


@child_only
def test_multi_hot_histograms_and_aps(monkeypatch):
    rng = np.random.default_rng(5)
    q, db = tied_codes(rng, 4, 48, 3), tied_codes(rng, 30, 48, 3)
    ql, dl = (rng.random((4, 70)) < 0.03).astype(np.int64), (rng.random((30, 70)) < 0.03).astype(np.int64)
    (_, tq), (_, td) = words(q), words(db)
    (tql, mode), (tdl, _) = gpu.labels_to_device(ql, DEVICE), gpu.labels_to_device(dl, DEVICE)
    assert mode == 2 and tql.shape == (4, 2)  # 70 labels in two words
    counts, rel = gpu.distance_histograms(tq, td, tql, tdl, 48, mode, block_n=8, splits=3)
    cc, cr = metrics.distance_histograms(q, db, ql, dl)
    np.testing.assert_array_equal(counts.cpu().numpy(), cc)
    np.testing.assert_array_equal(rel.cpu().numpy(), cr)
    monkeypatch.setattr(metrics, "_device", lambda device, *arrays: DEVICE)
    assert np.array_equal(metrics.average_precisions(q, db, ql, dl), metrics.average_precisions(q, db, ql, dl, device="cpu"))


@child_only
def test_metrics_dispatch_runs_the_kernels_and_matches_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(7)
    q, db = tied_codes(rng, 5, 24, 4), tied_codes(rng, 60, 24, 4)
    ql, dl = rng.integers(0, 4, 5), rng.integers(0, 4, 60)
    cpu_aps = metrics.average_precisions(q, db, ql, dl)
    cpu_map = metrics.mean_average_precision(q, db, ql, dl)
    calls = []
    real = gpu.distance_histograms
    monkeypatch.setattr(gpu, "distance_histograms", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    monkeypatch.setattr(metrics, "_device", lambda device, *arrays: None if device == "cpu" else DEVICE)
    tensors = [torch.as_tensor(x).to(DEVICE) for x in (q, db, ql, dl)]
    assert np.array_equal(metrics.average_precisions(*tensors), cpu_aps)  # ==, not approximately
    assert metrics.mean_average_precision(q, db, ql, dl, device="cuda") == cpu_map
    assert len(calls) == 2
    metrics.mean_average_precision(q, db, ql, dl, device="cpu")
    metrics.mean_average_precision(q, db, ql, dl, ties="stable", device="cuda")
    assert len(calls) == 2  # "cpu" and ties="stable" stay on the CPU kernels


@child_only
def test_index_triton_backend_equals_numba():
    rng = np.random.default_rng(11)
    db, q = tied_codes(rng, 50, 64, 5), tied_codes(rng, 3, 64, 5)
    ref, tri = HammingIndex(64).add(db), HammingIndex(64, backend="triton").add(db[:20]).add(db[20:])
    for k in (1, 10, 50, 80):
        for (rd, ri), (td, ti) in [(ref.search(q, k), tri.search(q, k)),
                                   (ref.search(torch.as_tensor(q), k), tri.search(torch.as_tensor(q), k))]:
            assert isinstance(ti, np.ndarray) and td.dtype == rd.dtype and ti.dtype == ri.dtype
            np.testing.assert_array_equal(ti, ri)
            np.testing.assert_array_equal(td, rd)
    ranked = tri.rank(q)
    assert isinstance(ranked, np.ndarray) and ranked.dtype == ref.rank(q).dtype
    np.testing.assert_array_equal(ranked, ref.rank(q))
    assert repr(HammingIndex(64, device="cpu")) == "HammingIndex(bits=64, ntotal=0, backend='numba', device='cpu')"
    assert repr(ref) == "HammingIndex(bits=64, ntotal=50, backend='numba')"
    empty = HammingIndex(64, backend="triton")
    assert empty.search(q, 3)[1].shape == (3, 0) and empty.rank(q).shape == (3, 0)
    if COMPILED:  # CUDA tensor queries get CUDA tensors back, from either backend; device="cuda" too
        tq = torch.as_tensor(q, device=DEVICE)
        for index in (ref, HammingIndex(64, device="cuda").add(db)):
            gd, gi = index.search(tq, 10)
            assert gd.is_cuda and gi.is_cuda
            np.testing.assert_array_equal(gi.cpu().numpy(), ref.search(q, 10)[1])
            np.testing.assert_array_equal(index.rank(tq).cpu().numpy(), ref.rank(q))


def test_device_rules_and_errors():
    from fgh_tutorial.errors import BadOption, EnvironmentFailure

    assert gpu.device_for(None, np.zeros(3), torch.zeros(3)) is None
    assert gpu.device_for("cpu") is None
    with pytest.raises(ValueError, match="device must be"):
        gpu.device_for("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(EnvironmentFailure, match="no CUDA device"):
            gpu.device_for("cuda")
        with pytest.raises(EnvironmentFailure, match="no CUDA device"):
            HammingIndex(12, device="cuda")
        with pytest.raises(EnvironmentFailure, match="no CUDA device"):
            metrics.mean_average_precision(np.ones((1, 12)), np.ones((2, 12)), [0], [0, 1], device="cuda")
    tq = gpu.to_device(np.zeros((2, 1), np.uint64), CPU)
    with pytest.raises(TypeError, match="db_words"):
        gpu.topk(tq, tq.to(torch.int32), 1)
    with pytest.raises(ValueError, match="words per code"):
        gpu.rank(tq, gpu.to_device(np.zeros((2, 2), np.uint64), CPU))
    with pytest.raises(ValueError, match="k must be"):
        gpu.topk(tq, tq, 0)
    with pytest.raises(TypeError, match="uint64"):
        gpu.to_device(np.zeros((2, 1), np.int64), CPU)
    assert gpu.to_device(tq, CPU) is tq and gpu.to_device(tq.t(), CPU).is_contiguous()  # words as tensors: moved
    with pytest.raises(TypeError, match="int64 tensor"):
        gpu.to_device(tq.to(torch.int32), CPU)
    ids, mode = gpu.labels_to_device(torch.tensor([3, 1], dtype=torch.int32), CPU)
    assert mode == 1 and ids.dtype == torch.int64 and ids.tolist() == [3, 1]
    hot, mode = gpu.labels_to_device(torch.tensor([[0, 1], [1, 1]]), CPU)  # multi-hot rows: packed as bits
    assert mode == 2 and hot.tolist() == [[2], [3]]
    if not gpu.interpreted():  # CPU tensors without the interpreter: a plain error, not a crash
        with pytest.raises(BadOption, match="TRITON_INTERPRET=1"):
            gpu.topk(tq, tq, 1)
