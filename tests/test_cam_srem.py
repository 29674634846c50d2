"""Attention maps, the grad-cam bridge with hash targets, and SREM."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.attention.cam import (CodeBit, CodeSimilarity, METHODS, cam_layers, channel_mean_cam, compute_cams,
                              energy_share, pointing_hits)
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.attention.srem import SREM, default_region_size, srem_mask


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return HashingModel(build_backbone("minires"), 12).eval()


def test_channel_mean_cam_shape_and_range():
    fmap = torch.randn(3, 16, 4, 5)
    cam = channel_mean_cam(fmap, (32, 40))
    assert cam.shape == (3, 32, 40)
    assert torch.allclose(cam.amin((1, 2)), torch.zeros(3)) and torch.allclose(cam.amax((1, 2)), torch.ones(3), atol=1e-6)
    # Eq. 3: the mean over channels decides the ranking; a constant map gives zeros, not NaN
    flat = channel_mean_cam(torch.ones(1, 4, 3, 3), 6)
    assert torch.isfinite(flat).all() and flat.abs().max() == 0
    with pytest.raises(ValueError, match=r"\(B, C, h, w\)"):
        channel_mean_cam(torch.ones(4, 3, 3), 6)


def test_channel_mean_hot_channel_location():
    fmap = torch.zeros(1, 8, 4, 4)
    fmap[0, :, 1, 2] = 5.0
    cam = channel_mean_cam(fmap, 4)
    assert cam[0].argmax().item() == 1 * 4 + 2


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_on_the_hashing_model(model, method):
    x = torch.randn(2, 3, 32, 32)
    was = model.training
    maps = compute_cams(model, x, method)
    assert maps.shape == (2, 32, 32) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1 + 1e-6
    assert model.training == was


@pytest.mark.parametrize("target", [CodeSimilarity(np.ones(12)), CodeBit(3, -1.0)])
def test_hash_targets_and_layers(model, target):
    x = torch.randn(2, 3, 32, 32)
    for layer in cam_layers(model).values():
        maps = compute_cams(model, x, "gradcam", targets=[target, target], layer=layer)
        assert maps.shape == (2, 32, 32)
    out = torch.randn(12, requires_grad=True)
    target(out).backward()
    assert out.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="unknown CAM method"):
        compute_cams(model, x, "scorecam++")


def test_localisation_scores():
    cams = np.zeros((2, 4, 4))
    cams[0, 0, 0] = 1.0
    cams[1] = 1.0
    masks = np.zeros((2, 4, 4), bool)
    masks[:, 0, :2] = True
    np.testing.assert_allclose(energy_share(cams, masks), [1.0, 2 / 16])
    assert pointing_hits(cams, masks).tolist() == [True, True]


def loop_srem(att, n, s, mode):
    """A plain per-image, per-pixel reference of Algorithm 1 in both readings."""
    h, w = att.shape
    ph, pw = (h + s, w + s) if mode == "anchors" else (-(-h // s) * s, -(-w // s) * s)
    pad = np.zeros((ph, pw))
    pad[:h, :w] = att
    erased = np.zeros_like(pad, bool)
    order = sorted(range(pad.size), key=lambda p: (-pad.flat[p], p))
    done, seen = 0, set()
    for p in order:
        if done == n:
            break
        r, c = divmod(p, pw)
        if mode == "anchors":
            erased[r:r + s, c:c + s] = True
            done += 1
        elif (r // s, c // s) not in seen:
            seen.add((r // s, c // s))
            erased[r // s * s:(r // s + 1) * s, c // s * s:(c // s + 1) * s] = True
            done += 1
    return (~erased[:h, :w]).astype(np.float32)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 1000), st.integers(0, 12), st.integers(1, 5), st.sampled_from(["grid", "anchors"]),
       st.integers(4, 12), st.integers(4, 12))
def test_srem_batch_equals_loop(seed, n, s, mode, h, w):
    g = torch.Generator().manual_seed(seed)
    att = torch.rand(3, h, w, generator=g)
    att[1] = (att[1] * 4).round() / 4  # many ties
    att[2] = 0.5  # all tied
    mask = srem_mask(att, n, s, mode)
    for i in range(3):
        np.testing.assert_array_equal(mask[i].numpy(), loop_srem(att[i].numpy(), n, s, mode))
    # binary, bounded erased area, hottest position erased (when anything is)
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    assert ((1 - mask).sum((1, 2)) <= n * s * s).all()
    if n > 0:
        hottest = att.reshape(3, -1).argmax(1)
        assert (mask.reshape(3, -1)[torch.arange(3), hottest] == 0).all()


def test_srem_module_erases_and_is_deterministic(model):
    x = torch.randn(2, 3, 32, 32)
    erased, mask = SREM(5, 4)(model, x)
    again, mask2 = SREM(5, 4)(model, x)
    assert torch.equal(mask, mask2) and torch.equal(erased, again)
    assert torch.equal(erased, x * mask[:, None]) and (mask == 0).any()
    assert default_region_size(448) == 32 and default_region_size(64) == 5
    with pytest.raises(ValueError, match="region_size"):
        srem_mask(torch.rand(1, 4, 4), 2, 0)
    with pytest.raises(ValueError, match="mode"):
        srem_mask(torch.rand(1, 4, 4), 2, 2, "blob")
