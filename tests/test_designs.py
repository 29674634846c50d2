"""DNNH, two-pyramid hashing, GAN-regularised maximum-entropy hashing and order-aware triplets:
networks, losses against hand-computed values, gradient steps, and the command line end to end."""
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.models import build_backbone
from fgh_tutorial.models.backbones import nin
from fgh_tutorial.models.dnnh import DNNH
from fgh_tutorial.models.gan import Discriminator, Generator
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.models.pyramid import TwoPyramid, consensus_fusion, consensus_loss, pyramid_pool
from fgh_tutorial.retrieval.balance import bit_entropies, mean_bit_entropy
from fgh_tutorial.runs.folder import run_database
from fgh_tutorial.systems import SYSTEMS, AsymmetricConfig, get_system
from fgh_tutorial.training.dnnh import latent_classification_loss
from fgh_tutorial.training.gan import GANConfig, discriminator_loss, generator_loss, load_or_train_gan
from fgh_tutorial.training.loop import StopAfter
from fgh_tutorial.training.losses import adsh_loss, soft_similarity
from fgh_tutorial.training.maxent import bit_entropy, max_entropy_loss
from fgh_tutorial.training.symmetric import train_symmetric
from fgh_tutorial.training.triplets import (class_balanced_batches, order_aware_triplet_loss, order_aware_weights,
                                            squared_triplet_loss)

NEW_SYSTEMS = ("dnnh", "pyramid", "gan-maxent", "triplet-order")


@pytest.fixture(autouse=True)
def tiny_gan_and_cache(tmp_path, monkeypatch):
    """GANs trained in these tests are tiny and cached in a temporary folder."""
    monkeypatch.setenv("FGH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(GANConfig, "for_image_size",
                        classmethod(lambda cls, size, seed=0: cls(epochs=1, width=8, batch_size=32, seed=seed)))


def _images(n=8, size=32, seed=0):
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _step_lowers(params, loss_fn, lr=0.05):
    torch.manual_seed(0)
    before = loss_fn()
    opt = torch.optim.SGD(params, lr=lr)
    opt.zero_grad()
    before.backward()
    opt.step()
    with torch.no_grad():
        after = loss_fn()
    return before.item(), after.item()


# ---------------------------------------------------------------- networks: shapes and code range
@pytest.mark.parametrize("arch, backbone", [("dnnh", "nin"), ("dnnh", "minires"), ("pyramid", "minires"),
                                            ("pyramid", "nin")])
def test_network_shapes_and_code_range(arch, backbone):
    torch.manual_seed(0)
    model = get_system(arch).build(build_backbone(backbone), 20, 5).eval()
    u = model(_images(3))
    assert u.shape == (3, 20) and model.bits == 20
    assert bool(((u > -1) & (u < 1)).all())
    codes = model.encode(_images(3))
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_dnnh_codes_threshold_the_latent_layer_at_one_half():
    torch.manual_seed(1)
    model = DNNH(nin((8, 16, 16)), 24, 4).eval()
    x = _images(5)
    h = model.forward_all(x)["h"]
    assert bool(((h > 0) & (h < 1)).all())
    assert torch.equal(model.encode(x), torch.where(h >= 0.5, 1.0, -1.0))
    assert build_backbone("nin").out_channels == 128
    with pytest.raises(ValueError, match="no pretrained weights"):
        build_backbone("nin", pretrained=True)


def test_dnnh_segment_logits_by_hand():
    model = DNNH(nin((8, 8, 8)), 3, 2)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
        model.classifier.bias.copy_(torch.tensor([0.5, -0.5]))
    seg1, seg2 = model.segment_logits(torch.tensor([[1.0, 0.0, 1.0]]), (1, 2))
    assert torch.allclose(seg1, torch.tensor([[1.5, 3.5]])) and torch.allclose(seg2, torch.tensor([[3.5, 5.5]]))
    with pytest.raises(ValueError, match="add up"):
        model.segment_logits(torch.zeros(1, 3), (1, 1))


def test_pyramid_parts():
    torch.manual_seed(2)
    model = TwoPyramid(build_backbone("minires"), 16).train()
    out = model.forward_all(_images(2))
    assert [tuple(m.shape[1:]) for m in out["low"]] == [(32, 16, 16), (64, 8, 8)]
    assert tuple(out["fmap"].shape[1:]) == (128, 4, 4) and len(out["a_l"]) == 2
    model(_images(2))
    assert model.aux_loss.item() > 0
    with pytest.raises(ValueError, match="Sequential"):
        TwoPyramid(torch.nn.Linear(2, 2), 16)


def test_gan_samples_have_the_image_shape():
    torch.manual_seed(3)
    G = Generator(resolution=16, z_dim=8, width=4, image_size=24)
    x = G.sample(5, torch.Generator().manual_seed(0))
    assert x.shape == (5, 3, 24, 24)
    assert Discriminator(16, 4)(x).shape == (5,)
    assert Generator(resolution=32, z_dim=8, width=4).sample(2).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="power of two"):
        Generator(resolution=48)


# ---------------------------------------------------------------- losses against hand-computed values
def test_latent_classification_loss_by_hand():
    y = torch.tensor([1])
    loss = latent_classification_loss([torch.tensor([[0.0, math.log(3)]]), torch.tensor([[math.log(3), 0.0]])], y)
    assert loss.item() == pytest.approx((math.log(4 / 3) + math.log(4)) / 2, abs=1e-6)


def test_pyramid_pool_and_consensus_by_hand():
    fmap = torch.arange(16.0).view(1, 1, 4, 4)
    # level 2: quadrant means 2.5, 4.5, 10.5, 12.5, each a quarter of the image
    assert pyramid_pool(fmap, (1, 2)).tolist() == [[7.5, 0.625, 1.125, 2.625, 3.125]]
    a1, a2 = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.atanh(0.5), 0.0]])
    assert torch.allclose(consensus_fusion([a1, a2]), torch.tensor([[math.atanh(0.5) / 2, 0.0]]))
    # (1/L) sum_l mean (tanh a_l - u)^2 with u = (0.5, 0): layer 1 (0.25 + 0) / 2, layer 2 0
    assert consensus_loss([a1, a2], torch.tensor([[0.5, 0.0]])).item() == pytest.approx(0.0625)


def test_gan_losses_by_hand():
    zero = torch.zeros(3)
    assert discriminator_loss(zero, zero).item() == pytest.approx(2 * math.log(2))
    assert generator_loss(zero).item() == pytest.approx(math.log(2))
    want = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(-1))
    assert discriminator_loss(torch.tensor([2.0]), torch.tensor([-1.0])).item() == pytest.approx(want)


def test_max_entropy_loss_by_hand_and_maximal_for_balanced_codes():
    h = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    u = torch.tensor([[0.6, -0.6]])
    assert bit_entropy(u).item() == pytest.approx(h, abs=1e-6)
    assert max_entropy_loss(u).item() == pytest.approx(math.log(2) - h, abs=1e-6)
    balanced = torch.zeros(4, 6)
    assert bit_entropy(balanced).item() == pytest.approx(math.log(2))
    assert max_entropy_loss(balanced).item() == pytest.approx(0, abs=1e-7)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        v = torch.rand(4, 6, generator=g) * 2 - 1
        assert bit_entropy(v) < bit_entropy(balanced) and max_entropy_loss(v) > 0
    assert max_entropy_loss(torch.full((2, 3), 0.999)) > max_entropy_loss(torch.full((2, 3), 0.5))


def test_bit_balance_entropy():
    codes = np.array([[1, 1, -1], [-1, 1, -1], [1, 1, -1], [-1, 1, -1]])
    assert bit_entropies(codes).tolist() == [1.0, 0.0, 0.0]
    assert mean_bit_entropy(codes) == pytest.approx(1 / 3)


def test_squared_triplet_loss_by_hand():
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [1.0, 1.0]])
    w = torch.zeros(4, 4, 4)
    w[0, 1, 2] = 1.0  # d(a,p) = 4/8, d(a,n) = 8/8: 0.25 + 0.5 - 1 < 0, satisfied
    assert squared_triplet_loss(u, w).item() == pytest.approx(0.0)
    w[0, 1, 3] = 3.0  # d(a,n) = 0: (0.25 + 0.5)^2 = 0.5625, weight 3 of 4
    assert squared_triplet_loss(u, w).item() == pytest.approx(3 * 0.5625 / 4)
    assert squared_triplet_loss(u, torch.zeros(4, 4, 4)).item() == 0.0


# ---------------------------------------------------------------- order-aware weights
def _ranking_ap(rel):
    rel = np.asarray(rel, bool)
    hits = np.cumsum(rel)
    return float(np.mean(hits[rel] / (np.flatnonzero(rel) + 1))) if rel.any() else 0.0


def _brute_weights(codes, labels):
    """|AP after swapping p and n - AP| for every triplet, by re-ranking explicitly."""
    codes, labels = np.asarray(codes), np.asarray(labels)
    B, c = codes.shape
    w = np.zeros((B, B, B))
    for a in range(B):
        others = [j for j in range(B) if j != a]
        dist = [(c - codes[a] @ codes[j]) // 2 for j in others]
        order = [others[k] for k in np.argsort(dist, kind="stable")]
        base = _ranking_ap([labels[j] == labels[a] for j in order])
        for p in others:
            for n in others:
                if labels[p] == labels[a] and labels[n] != labels[a]:
                    swapped = [n if j == p else p if j == n else j for j in order]
                    w[a, p, n] = abs(_ranking_ap([labels[j] == labels[a] for j in swapped]) - base)
    return w


def test_order_aware_weights_follow_the_rank_order():
    rng = np.random.default_rng(0)
    for B, c, k in ((6, 4, 2), (9, 8, 3), (12, 6, 3)):
        codes = np.where(rng.random((B, c)) < 0.5, -1.0, 1.0)
        labels = rng.integers(0, k, B)
        got = order_aware_weights(torch.tensor(codes), torch.tensor(labels)).numpy()
        assert np.allclose(got, _brute_weights(codes, labels), atol=1e-6)


def test_order_aware_weight_by_hand():
    # anchor 0 ranks the negative 2 (distance 0) above the positive 1 (distance 2): AP = 1/2; swapped, 1
    codes = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, 1.0]])
    w = order_aware_weights(codes, torch.tensor([0, 0, 1]))
    assert w[0, 1, 2].item() == pytest.approx(0.5)
    assert w[0, 2, 1].item() == 0 and w[2].abs().sum().item() == 0  # not triplets


def test_class_balanced_batches():
    labels = torch.arange(40) % 10
    cfg = AsymmetricConfig(batch_size=8)
    batches = class_balanced_batches(torch.arange(40), labels, cfg, torch.Generator().manual_seed(0))
    assert len(batches) == 5
    for b in batches:
        counts = torch.bincount(labels[b], minlength=10)
        assert len(b) == 8 and sorted(counts[counts > 0].tolist()) == [4, 4]


# ---------------------------------------------------------------- a gradient step lowers each loss
@pytest.mark.slow
def test_gradient_steps_lower_the_losses():
    torch.manual_seed(0)
    x, y = _images(8), torch.tensor([0, 1, 2, 3] * 2)
    dnnh = DNNH(nin((8, 16, 16)), 12, 4).train()
    b, a = _step_lowers(dnnh.parameters(), lambda: latent_classification_loss(
        dnnh.segment_logits(dnnh.forward_all(x)["h"], (4, 8)), y))
    assert a < b

    pyr = TwoPyramid(build_backbone("minires"), 12).train()
    V = torch.where(torch.randn(8, 12) >= 0, 1.0, -1.0)
    S = soft_similarity(y, y)

    def pyramid_loss():
        u = pyr(x)
        return adsh_loss(u, V, S, V, 200.0) + pyr.aux_loss
    b, a = _step_lowers(pyr.parameters(), pyramid_loss, lr=1e-4)
    assert a < b

    net = HashingModel(build_backbone("minires"), 12).train()
    fake = Generator(16, 8, 4, image_size=32).sample(4)
    b, a = _step_lowers(net.parameters(), lambda: max_entropy_loss(net(torch.cat([x, fake]))[8:]))
    assert a < b

    tri = HashingModel(build_backbone("minires"), 12).train()
    w = order_aware_weights(tri.encode(x), y)
    b, a = _step_lowers(tri.parameters(), lambda: squared_triplet_loss(tri(x), w))
    assert a < b
    assert order_aware_triplet_loss(tri(x), y, (4, 8)).item() >= 0

    D, G = Discriminator(16, 4).train(), Generator(16, 8, 4, image_size=32).eval()
    fakes = G.sample(8)
    b, a = _step_lowers(D.parameters(), lambda: discriminator_loss(D(x), D(fakes)), lr=0.01)
    assert a < b


# ---------------------------------------------------------------- training loops
@pytest.mark.slow
def test_symmetric_loop_resumes_exactly(tmp_path):
    x, y = _images(24, 16), torch.arange(24) % 3
    cfg = AsymmetricConfig(segments=(8,), iterations=2, samples=16, batch_size=8, optimizer="adamw", lr=1e-3)

    def run(**kw):
        torch.manual_seed(0)
        model = HashingModel(nin((4, 8, 8)), 8)
        loss = lambda m, xb, yb, g: (m(xb) - 0.5).pow(2).mean()  # noqa: E731
        return train_symmetric(model, x, y, cfg, loss, val=(x[:6], y[:6]), progress=False, **kw)

    codes, hist = run()
    assert codes.shape == (24, 8) and set(codes.unique().tolist()) <= {-1.0, 1.0}
    assert len(hist.loss) == 2 and len(hist.val_map) == 2 and hist.best_iteration in (1, 2)
    assert run(checkpoint_dir=tmp_path, callbacks=[StopAfter(1)])[0] is None
    resumed, hist2 = run(checkpoint_dir=tmp_path)
    assert torch.equal(resumed, codes) and hist2.loss == hist.loss


@pytest.mark.slow
def test_gan_is_cached(tmp_path):
    x = _images(16, 16)
    cfg = GANConfig(epochs=1, width=4, batch_size=8)
    G1, h1 = load_or_train_gan(x, cfg, progress=False)
    G2, h2 = load_or_train_gan(x, cfg, progress=False)
    assert h1.d_loss == h2.d_loss and len(h1.d_loss) == 1
    assert torch.equal(G1.sample(2, torch.Generator().manual_seed(0)), G2.sample(2, torch.Generator().manual_seed(0)))
    assert G1.sample(3).shape == (3, 3, 16, 16)
    G3, _ = load_or_train_gan(x + 1, cfg, progress=False)  # other images, another generator
    z = torch.Generator().manual_seed(0)
    assert not torch.equal(G3.sample(2, z), G1.sample(2, torch.Generator().manual_seed(0)))


def test_registry_entries():
    for name in NEW_SYSTEMS:
        assert name in SYSTEMS and get_system(SYSTEMS[name].label) is SYSTEMS[name]
    assert get_system("adsh").asymmetric and not get_system("dnnh").asymmetric
    with pytest.raises(TypeError, match="DNNH network"):
        get_system("dnnh").train(HashingModel(nin((4, 8, 8)), 8), _images(8, 16), torch.arange(8) % 2,
                                 AsymmetricConfig(segments=(8,), iterations=1, samples=8, batch_size=4), progress=False)


# ---------------------------------------------------------------- the command line, end to end
@pytest.mark.slow
@pytest.mark.parametrize("method", NEW_SYSTEMS)
def test_cli_trains_each_design_on_synthbirds(method, small_profile, tmp_path, capsys):
    small_profile(per_class=4)
    out = tmp_path / method
    assert main(["train", "--method", method, "--bits", "12", "--iterations", "1", "--samples", "128",
                 "--out", str(out)]) == 0
    codes, labels = run_database(out)
    assert codes.shape == (4 * 54, 12) and set(np.unique(codes)) <= {-1, 1}
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["map"] <= 1 and metrics["queries"] == 54
    assert list((out / "checkpoints").glob("*.pt"))
    capsys.readouterr()
    assert main(["evaluate", "--run", str(out), "--encode-database"]) == 0
    encoded = json.loads(capsys.readouterr().out)
    if not get_system(method).asymmetric:  # the database codes are the network's own
        assert encoded["map"] == pytest.approx(metrics["map"])


@pytest.mark.slow
@pytest.mark.parametrize("method", NEW_SYSTEMS)
def test_cli_trains_each_design_on_a_folder(method, tmp_path, capsys):
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    for k, colour in enumerate(((200, 40, 40), (40, 200, 40), (40, 40, 200))):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(8):
            pixels = np.clip(np.array(colour) + rng.normal(0, 30, (40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / f"class{k}" / f"{i}.png")
    out = tmp_path / "run"
    assert main(["train", "--dataset", "folder", "--data", str(root), "--method", method, "--bits", "12",
                 "--iterations", "1", "--samples", "64", "--out", str(out)]) == 0
    codes, labels = run_database(out)
    assert codes.shape[1] == 12 and len(codes) == len(labels) and set(np.unique(codes)) <= {-1, 1}
    assert json.loads((out / "metrics.json").read_text())["bits"] == 12
