import numpy as np
import pytest

from fgh_tutorial.retrieval.hamming import hamming_topk, pack_codes
from fgh_tutorial.retrieval.index import HammingIndex


def codes(seed, n, bits):
    return np.where(np.random.default_rng(seed).random((n, bits)) < 0.5, -1, 1)


@pytest.mark.parametrize("bits", [12, 64, 100])
def test_add_search_rank_save_load(tmp_path, bits):
    db, q = codes(0, 300, bits), codes(1, 7, bits)
    index = HammingIndex(bits).add(db[:100]).add(pack_codes(db[100:]))
    assert len(index) == 300
    d, i = index.search(q, 5)
    want = hamming_topk(pack_codes(q), pack_codes(db), 5)
    assert np.array_equal(d, want[0]) and np.array_equal(i, want[1])
    assert np.array_equal(index.rank(q)[:, :5], i)
    again = HammingIndex.load(index.save(tmp_path / "db.npz"))
    assert again.bits == bits and np.array_equal(again.words, index.words)


def test_faiss_backend_agrees_on_distances():
    pytest.importorskip("faiss")
    db, q = codes(2, 500, 48), codes(3, 9, 48)
    exact = HammingIndex(48).add(db).search(q, 10)
    fast = HammingIndex(48, backend="faiss").add(db).search(q, 10)
    assert np.array_equal(exact[0], fast[0])
    full = (q[:, None] != db[None]).sum(-1)
    assert np.array_equal(np.take_along_axis(full, fast[1], 1), fast[0])


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="bits must be"):
        HammingIndex(0)
    with pytest.raises(ValueError, match="backend"):
        HammingIndex(8, backend="annoy")
    index = HammingIndex(16)
    with pytest.raises(ValueError, match=r"\(n x 16\)"):
        index.add(codes(0, 3, 12))
    with pytest.raises(ValueError, match="1 words"):
        index.add(np.zeros((3, 2), np.uint64))
    with pytest.raises(ValueError, match="only -1 and"):
        index.add(np.zeros((3, 16)))
    with pytest.raises(FileNotFoundError):
        HammingIndex.load(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", x=np.ones(3))
    with pytest.raises(ValueError, match="not a codes file"):
        HammingIndex.load(tmp_path / "bad.npz")
    assert index.search(codes(0, 2, 16), 3)[0].shape == (2, 0)
