"""The code contract of retrieval/codes.py: sign(0) := +1 everywhere, packed words with zero padding,
one file format with its bit count checked on load."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgh_tutorial.attention.cam import compute_cams
from fgh_tutorial.models import HashingModel, build_backbone
from fgh_tutorial.retrieval import HammingIndex, binarize, hard_sign, load_codes, pack_codes, save_codes, unpack_codes
from fgh_tutorial.training.solver import update_database_codes


def test_sign_of_zero_is_plus_one_everywhere():
    assert binarize(torch.tensor([[0.0, -0.0, -1e-9, 2.0]])).tolist() == [[1, 1, -1, 1]]
    assert binarize(np.array([0.0, -3.0])).dtype == np.int8
    t = hard_sign(torch.tensor([0.0, -0.5], dtype=torch.float64))
    assert t.dtype == torch.float64 and t.tolist() == [1.0, -1.0]
    # the solver: with U = 0 every argument of the sign is exactly 0, so every new code is +1
    V = update_database_codes(-torch.ones(5, 3), torch.zeros(2, 3), [0, 3], torch.tensor([0, 1, 0, 1, 0]))
    assert V.dtype == torch.float32 and (V == 1).all()


def test_cam_targets_are_strict_codes():
    model = HashingModel(build_backbone("minires"), 8)
    with torch.no_grad():
        model.head.fc.weight.zero_()
        model.head.fc.bias.zero_()  # u = tanh(0) = 0: the target code must still be +-1, not 0
    cams = compute_cams(model, torch.randn(2, 3, 32, 32), "gradcam")
    assert cams.shape == (2, 32, 32)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 20), bits=st.integers(1, 200), seed=st.integers(0, 2**16))
def test_pack_round_trip_and_file_round_trip(tmp_path_factory, n, bits, seed):
    codes = np.where(np.random.default_rng(seed).random((n, bits)) < 0.5, -1, 1).astype(np.int8)
    words = pack_codes(codes)
    assert words.shape == (n, -(-bits // 64)) and np.array_equal(unpack_codes(words, bits), codes)
    path = save_codes(tmp_path_factory.mktemp("c") / "codes", words, bits, labels=np.arange(n))
    got, got_bits, extra = load_codes(path, bits)
    assert got_bits == bits and np.array_equal(got, words) and np.array_equal(extra["labels"], np.arange(n))


def test_load_checks_bits_width_and_padding(tmp_path):
    words = pack_codes(np.ones((3, 12), np.int8))
    path = save_codes(tmp_path / "c.npz", words, 12)
    with pytest.raises(ValueError, match="holds 12-bit codes, expected 24"):
        load_codes(path, 24)
    bad = words.copy()
    bad[0, 0] |= np.uint64(1) << np.uint64(40)  # a padding bit above bit 12
    np.savez(tmp_path / "pad.npz", words=bad, bits=12)
    with pytest.raises(ValueError, match="padding bits"):
        load_codes(tmp_path / "pad.npz")
    np.savez(tmp_path / "wide.npz", words=np.zeros((3, 2), np.uint64), bits=12)
    with pytest.raises(ValueError, match="take 1 words, got 2"):
        HammingIndex.load(tmp_path / "wide.npz")
    np.save(tmp_path / "obj.npy", np.array([object()], dtype=object), allow_pickle=True)
    (tmp_path / "obj.npz").write_bytes((tmp_path / "obj.npy").read_bytes())
    with pytest.raises(ValueError, match="not a codes file"):
        load_codes(tmp_path / "obj.npz")


def test_index_saves_in_the_one_format(tmp_path):
    codes = np.where(np.random.default_rng(0).random((50, 48)) < 0.5, -1, 1)
    index = HammingIndex(48).add(codes)
    path = index.save(tmp_path / "db")
    words, bits, _ = load_codes(path)
    assert bits == 48 and np.array_equal(unpack_codes(words, 48), codes)
    again = HammingIndex.load(path)
    assert np.array_equal(again.search(codes[:5], 3)[1], index.search(codes[:5], 3)[1])
