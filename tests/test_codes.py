"""The code contract of retrieval/codes.py: sign(0) := +1 everywhere, packed words with zero padding,
one file format with its bit count checked on load."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fgh_tutorial.attention.cam import compute_cams
from fgh_tutorial.models import HashingModel
from fgh_tutorial.models.backbones import Backbone
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
    """u = tanh(0) = 0 exactly: the default Grad-CAM target must still be the code sign(0) = +1 in
    every bit, not 0 (no gradient) or -1. The backbone is an identity, so the feature map is the
    image A itself, and each bit sees channel 0 minus channel 1 (equal means: W f = 0 exactly,
    small integers over a power-of-two area). By hand, the target sum_k u_k has the gradient
    (1 - u^2) W^T 1 / HW per pixel, so the Grad-CAM weights are (8, -8, 0) / HW and the map is
    relu(A_0 - A_1), scaled to a maximum of 1."""
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.integers(0, 4, (2, 3, 8, 8)), dtype=torch.float32)
    x[:, 1] = x[:, 0].flip(-1)  # channel 1: channel 0 mirrored, so both have the same mean
    identity = torch.nn.Conv2d(3, 3, 1)  # a layer with weights, so that Grad-CAM sees its gradient
    model = HashingModel(Backbone(torch.nn.Sequential(identity), 3, "identity"), 8).eval()
    with torch.no_grad():
        identity.weight.copy_(torch.eye(3)[:, :, None, None])
        identity.bias.zero_()
        model.head.fc.weight.copy_(torch.tensor([[1.0, -1.0, 0.0]]).repeat(8, 1))
        model.head.fc.bias.zero_()
        assert (model(x) == 0).all()
    expected = (x[:, 0] - x[:, 1]).clamp(min=0).numpy()
    expected /= expected.max((1, 2), keepdims=True)
    np.testing.assert_allclose(compute_cams(model, x, "gradcam"), expected, atol=1e-5)


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
