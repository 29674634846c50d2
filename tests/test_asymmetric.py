"""Asymmetric training: learns, every method runs, and an interrupted run resumes to the same state."""
import numpy as np
import pytest
import torch

from fgh_tutorial.training.asymmetric import AsymmetricConfig, evaluate_asymmetric, train_asymmetric
from fgh_tutorial.training.loop import StopAfter
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.heads import HashingModel


def toy(n=96, classes=4):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % classes
    images = torch.randn(n, 3, 16, 16, generator=g) * 0.3
    images[:, 0] += labels.view(-1, 1, 1) - 1.5
    return images, labels


def model(bits):
    torch.manual_seed(0)
    return HashingModel(build_backbone("minires"), bits)


@pytest.mark.parametrize("terms", [(), ("srem",), ("esrl",), ("srem", "esrl")])
def test_every_method_runs(terms):
    images, labels = toy()
    cfg = AsymmetricConfig(segments=(4, 8), iterations=1, epochs=1, samples=64, batch_size=16, terms=terms)
    V, hist = train_asymmetric(model(12), images, labels, cfg, progress=False)
    assert V.shape == (96, 12) and len(hist.loss) == 1
    assert np.isfinite(hist.loss[0])


@pytest.mark.slow
def test_learns_on_separable_data():
    images, labels = toy()
    cfg = AsymmetricConfig(segments=(8,), iterations=4, epochs=2, samples=64, batch_size=16, lr=0.05)
    net = model(8)
    V, hist = train_asymmetric(net, images, labels, cfg, val=(images[:16], labels[:16]), progress=False)
    assert len(hist.val_map) == 4 and hist.val_map[hist.best_iteration - 1] == max(hist.val_map)
    assert evaluate_asymmetric(net, images, labels, V, labels, cfg.segments)[0] > 0.5


@pytest.mark.slow
def test_resume_reaches_the_same_state(tmp_path):
    images, labels = toy()
    cfg = AsymmetricConfig(segments=(8,), iterations=2, epochs=2, samples=48, batch_size=16, terms=("srem", "esrl"))
    whole = model(8)
    val = (images[:16], labels[:16])
    V_whole, h_whole = train_asymmetric(whole, images, labels, cfg, val=val, progress=False)
    parted = model(8)
    train_asymmetric(parted, images, labels, cfg, checkpoint_dir=tmp_path, val=val, progress=False,
                     callbacks=[StopAfter(3)])
    resumed = model(8)  # a fresh process: only the checkpoint carries the state
    V_res, h_res = train_asymmetric(resumed, images, labels, cfg, checkpoint_dir=tmp_path, val=val, progress=False)
    assert h_whole.best_iteration == h_res.best_iteration and h_whole.val_map == pytest.approx(h_res.val_map)
    assert torch.equal(V_whole, V_res)
    assert h_whole.loss == pytest.approx(h_res.loss, rel=1e-6)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_bad_config():
    images, labels = toy()
    with pytest.raises(ValueError, match="loss terms"):
        train_asymmetric(model(8), images, labels, AsymmetricConfig(segments=(8,), terms=("dpsh",)), progress=False)
    with pytest.raises(ValueError, match="add up"):
        train_asymmetric(model(8), images, labels, AsymmetricConfig(segments=(12,)), progress=False)


@pytest.mark.parametrize("scores, patience, ran, best", [
    ([0.5, 0.4, 0.45, 0.6, 0.7, 0.1], 2, 3, 1),  # no better iteration in 2 and 3: stop after 3
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], 2, 6, 6),  # still climbing: the whole budget
    ([0.5, 0.4, 0.45, 0.6, 0.7, 0.1], 0, 6, 5),  # patience 0: every iteration
])
def test_patience_stops_at_the_validation_plateau(monkeypatch, scores, patience, ran, best):
    import fgh_tutorial.training.asymmetric as asym

    it = iter(scores)
    monkeypatch.setattr(asym, "evaluate_asymmetric", lambda *a, **k: [next(it)])
    images, labels = toy()
    cfg = AsymmetricConfig(segments=(8,), iterations=6, samples=32, batch_size=16, patience=patience)
    _, hist = train_asymmetric(model(8), images, labels, cfg, val=(images[:8], labels[:8]), progress=False)
    assert hist.val_map == scores[:ran] and hist.best_iteration == best
