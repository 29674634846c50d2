"""The device paths of the solver, encoding, augmentation and training, with tensors on the CPU
and, where CUDA is available, on the GPU: the V-step, ``relaxed_codes``, ``augment`` and a tiny
FCAENet run of the asymmetric loop (SREM, ESRL, bf16 autocast on CUDA). Without CUDA only the CPU
cases run; ``make gpu-check`` runs the CUDA ones on a GPU machine."""
import numpy as np
import pytest
import torch
from torch import nn

from fgh_tutorial.data import augment
from fgh_tutorial.models.backbones import Backbone, minires
from fgh_tutorial.models.encode import encode, relaxed_codes
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.training.asymmetric import AsymmetricConfig, train_asymmetric
from fgh_tutorial.training.solver import update_database_codes

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


@pytest.mark.parametrize("device", DEVICES)
def test_v_step_on_the_device_equals_the_cpu(device):
    rng = np.random.default_rng(0)
    n, m, c = 3000, 300, 24
    V, U = np.sign(rng.standard_normal((n, c))), np.tanh(rng.standard_normal((m, c)))
    index, labels = rng.permutation(n)[:m], rng.integers(0, 20, n)
    ref = update_database_codes(V, U, index, labels)
    out = update_database_codes(*(torch.from_numpy(a).to(device) for a in (V, U, index, labels)))
    assert out.device.type == device and out.dtype == torch.float64
    assert torch.equal(out.cpu(), ref)  # float64 sums of 300 terms: no sign comes out otherwise here


@pytest.mark.parametrize("device", DEVICES)
def test_encoding_on_the_device(device):
    torch.manual_seed(0)
    model = HashingModel(minires(), 48).eval()
    x = torch.randn(12, 3, 64, 64)
    ref = relaxed_codes(model, x)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):  # float32 convolutions, as on the CPU
        got = relaxed_codes(model.to(device), x.to(device), batch_size=5)
        codes = encode(model, x)  # CPU images, the network on the device
    assert got.device.type == "cpu" and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-3, atol=1e-3)  # other convolution algorithms, float32
    assert codes.dtype == np.int8 and (codes == np.where(ref.numpy() >= 0, 1, -1)).mean() > 0.99


@pytest.mark.parametrize("device", DEVICES)
def test_augmentation_on_the_device_draws_as_on_the_cpu(device):
    x = torch.randn(6, 3, 8, 8)
    ref = augment(x, torch.Generator().manual_seed(1), 0.25)
    got = augment(x.to(device), torch.Generator().manual_seed(1), 0.25)  # the generator stays on the CPU
    assert got.device.type == device
    assert torch.equal(got.cpu(), ref)


@pytest.mark.parametrize("images_on_device", [False, True])
@pytest.mark.parametrize("device", DEVICES)
def test_a_tiny_fcaenet_run_on_the_device(device, images_on_device):
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
    model = HashingModel(Backbone(features, 16, "tiny"), 24).to(device)
    x, labels = torch.randn(60, 3, 24, 24), torch.arange(60) % 6
    if images_on_device:
        x = x.to(device)
    cfg = AsymmetricConfig(segments=(8, 16), iterations=2, samples=40, batch_size=10, terms=("srem", "esrl"),
                           positives="dataset", srem_regions=4, init_codes="network", max_shift=0.1)
    V, hist = train_asymmetric(model, x, labels, cfg, val=(x[:12], labels[:12]), progress=False)
    assert V.device.type == device and V.shape == (60, 24)
    assert set(V.unique().tolist()) <= {-1.0, 1.0}
    assert len(hist.loss) == 2 and all(np.isfinite(hist.loss)) and len(hist.val_map) == 2
