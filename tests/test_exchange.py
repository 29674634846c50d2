"""ExchNet: shapes, exchange semantics, running anchors, diversity losses and their gradients."""
import torch

from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.exchnet import (ClassAnchors, ExchNet, channel_diversity, exchange, spatial_diversity)


def model(parts=3, bits=16):
    torch.manual_seed(0)
    return ExchNet(build_backbone("minires"), bits, n_classes=5, n_parts=parts)


def test_shapes_local_branch_keeps_resolution():
    net = model()
    out = net.parts(torch.randn(2, 3, 32, 32))
    assert out["maps"].shape == (2, 3, 8, 8)  # mid-level resolution: stride 4 at the stem's end
    assert out["parts"].shape == (2, 3, 128) and out["global"].shape == (2, 128)
    net.eval()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 16)
    assert set(net.encode(torch.randn(2, 3, 32, 32)).unique().tolist()) <= {-1.0, 1.0}


def test_exchange_semantics():
    parts = torch.randn(4, 3, 6)
    anchors = torch.randn(4, 3, 6)
    mask = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    out = exchange(parts, anchors, mask)
    assert torch.equal(out[mask], anchors[mask]) and torch.equal(out[~mask], parts[~mask])


def test_anchors_are_running_class_means():
    anchors = ClassAnchors(3, 2, 4)
    g = torch.Generator().manual_seed(0)
    feats, labels = [], []
    for _ in range(5):
        f = torch.randn(6, 2, 4, generator=g)
        y = torch.randint(0, 2, (6,), generator=g)  # class 2 never appears
        anchors.update(f, y)
        feats.append(f)
        labels.append(y)
    f, y = torch.cat(feats), torch.cat(labels)
    for c in (0, 1):
        torch.testing.assert_close(anchors.mean[c], f[y == c].mean(0))
    assert anchors.mean[2].abs().sum() == 0 and anchors.count.tolist() == [(y == 0).sum(), (y == 1).sum(), 0]


def test_diversity_losses_zero_when_disjoint_positive_when_overlapping():
    disjoint = torch.zeros(1, 2, 4, 4)
    disjoint[0, 0, :2] = 1
    disjoint[0, 1, 2:] = 1
    assert spatial_diversity(disjoint) == 0
    overlap = disjoint.clone()
    overlap[0, 1, 1] = 1
    assert spatial_diversity(overlap) > 0
    assert channel_diversity(torch.tensor([[[1.0, 0, 0], [0, 2.0, 0]]])) == 0
    assert channel_diversity(torch.tensor([[[1.0, 1, 0], [0, 2.0, 0]]])) > 0


def test_diversity_gradients_push_maps_apart():
    maps = torch.rand(1, 2, 4, 4, requires_grad=True)
    spatial_diversity(maps).backward()
    # where map 1 is large, growing map 0 increases the overlap: positive gradient there
    assert maps.grad is not None and torch.isfinite(maps.grad).all()
    with torch.no_grad():
        step = maps - 0.5 * maps.grad
    assert spatial_diversity(step) < spatial_diversity(maps.detach())
    parts = torch.rand(2, 3, 5, requires_grad=True)
    channel_diversity(parts).backward()
    with torch.no_grad():
        assert channel_diversity(parts - 0.5 * parts.grad) < channel_diversity(parts.detach())


def test_training_step_uses_labels_and_aux_loss():
    from fgh_tutorial.training.central import train_hashing

    net = model(bits=12 + 24)
    x = torch.randn(16, 3, 32, 32)
    y = torch.arange(16) % 5
    hist = train_hashing(net, x, y, epochs=1, batch_size=8, progress=False, segments=(12, 24))
    assert len(hist.loss) == 1 and net.aux_loss > 0 and net.anchors.count.sum() == 16


def test_part_consistency():
    import numpy as np

    from fgh_tutorial.models.exchnet import part_assignments, part_consistency

    masks = np.zeros((2, 3, 2, 2))
    masks[:, 0, 0, 0] = masks[:, 1, 0, 1] = 1
    masks[:, 2, 1] = 1
    maps = np.zeros((2, 2, 2, 2))
    maps[0, 0, 0, 0] = maps[1, 0, 0, 0] = 1  # part 0 on region 0 in both images
    maps[0, 1, 1, 1] = 1  # part 1 on region 2 ...
    maps[1, 1, 0, 1] = 1  # ... then on region 1
    a = part_assignments(maps, masks)
    assert a.tolist() == [[0, 2], [0, 1]]
    assert part_consistency(a, [0, 0]) == 0.75 and part_consistency(a, [0, 1]) == 1.0
