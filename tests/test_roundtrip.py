"""Every file the project writes reads back exactly: codes files, HammingIndex files,
checkpoints, run-folder JSON (config, metrics, manifest) and explorer bundles."""
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fgh_tutorial.files import read_json, write_json
from fgh_tutorial.retrieval.codes import load_codes, pack_codes, save_codes, unpack_codes
from fgh_tutorial.retrieval.index import HammingIndex
from fgh_tutorial.training.checkpoints import load_checkpoint, save_checkpoint

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def sign_codes(draw, max_n=20, max_bits=150):
    n = draw(st.integers(0, max_n))
    bits = draw(st.integers(1, max_bits))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8), rng


@SETTINGS
@given(sign_codes())
def test_codes_file_round_trip(tmp_path, drawn):
    codes, rng = drawn
    labels = rng.integers(-5, 1000, len(codes))
    path = save_codes(tmp_path / "c.npz", pack_codes(codes), codes.shape[1], labels=labels)
    words, bits, extra = load_codes(path)
    assert bits == codes.shape[1] and np.array_equal(unpack_codes(words, bits), codes)
    assert np.array_equal(extra["labels"], labels) and extra["labels"].dtype == labels.dtype
    index = HammingIndex.load(HammingIndex(bits).add(codes).save(tmp_path / "i.npz"))
    assert index.bits == bits and np.array_equal(index.words, pack_codes(codes))


_dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.int8,
                           torch.uint8, torch.bool])


@st.composite
def tensors(draw):
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g) * 100
    return t.to(draw(_dtypes))


json_scalars = st.none() | st.booleans() | st.integers(-2**53, 2**53) | \
    st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
payloads = st.recursive(json_scalars | tensors(), lambda inner: st.lists(inner, max_size=4) |
                        st.tuples(inner, inner) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                        max_leaves=20)


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return isinstance(b, float) and (a == b or (math.isnan(a) and math.isnan(b)))
    return type(a) is type(b) and a == b


@pytest.mark.slow
@SETTINGS
@given(st.dictionaries(st.text(max_size=8), payloads, max_size=5))
def test_checkpoint_round_trip(tmp_path, payload):
    assert _same(load_checkpoint(save_checkpoint(tmp_path / "c.pt", payload)), payload)


@SETTINGS
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6))
def test_run_json_round_trip(tmp_path, obj):
    assert read_json(write_json(tmp_path / "manifest.json", obj)) == obj
    assert not list(tmp_path.glob(".*.tmp"))


def test_json_refuses_what_would_not_read_back(tmp_path):
    for bad in ({"map": float("nan")}, {"x": object()}):
        with pytest.raises(ValueError, match="cannot write .*m.json: the values are not plain JSON"):
            write_json(tmp_path / "m.json", bad)
    assert not (tmp_path / "m.json").exists()


@pytest.mark.slow
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 40), min_size=1, max_size=3, unique=True), st.integers(0, 2**31 - 1))
def test_bundle_round_trip(tmp_path, lengths, seed):
    from fgh_tutorial.app.bundle import Bundle, load_bundle
    from fgh_tutorial.app.explorer import TrainedSystem
    from fgh_tutorial.models.backbones import minires
    from fgh_tutorial.models.heads import HashingModel
    from fgh_tutorial.training.profiles import get_profile

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    bits = sum(lengths)
    model = HashingModel(minires((4, 4, 8)), bits).eval()
    codes = np.where(rng.random((7, bits)) < 0.5, -1, 1).astype(np.int8)
    scores = {b: float(rng.random()) for b in lengths}
    system = TrainedSystem("s", model, codes, tuple(lengths), "adsh", scores)
    profile = get_profile("cpu", data_root=None)
    bundle = Bundle(profile, {"s": system}, rng.integers(0, 5, 7), rng.integers(0, 5, 3))
    import fgh_tutorial.app.bundle as bundle_module

    real_build = bundle_module.build_backbone
    bundle_module.build_backbone = lambda name, *a, **k: minires((4, 4, 8))
    try:
        back = load_bundle(bundle.save(tmp_path / "b.pt"))
        again = load_bundle(back.save(tmp_path / "b2.pt"))
    finally:
        bundle_module.build_backbone = real_build
    got = back.systems["s"]
    assert np.array_equal(got.codes, codes) and got.lengths == tuple(lengths) and got.map == scores
    assert np.array_equal(back.db_labels, bundle.db_labels) and np.array_equal(back.query_labels, bundle.query_labels)
    half = {k: (v.half().float() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    assert _same(dict(got.model.state_dict()), half)  # weights stored as float16, exactly
    assert _same(dict(again.systems["s"].model.state_dict()), dict(got.model.state_dict()))  # a fixed point
