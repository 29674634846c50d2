"""The registry of systems is the whole truth: a system registered from outside the package trains,
evaluates, answers queries and is explored through the command line and the explorer; every
registered system trains; what a system declares decides what the command line accepts."""
import json

import numpy as np
import pytest
import torch
from PIL import Image
from toy_system import SYSTEM, MaxPoolHash

from fgh_tutorial.app.bundle import bundle_from_runs
from fgh_tutorial.app.explorer import explain, retrieve
from fgh_tutorial.cli import main
from fgh_tutorial.errors import BadOption
from fgh_tutorial.models import build_backbone
from fgh_tutorial.systems import SYSTEMS, AsymmetricConfig, System, get_system, register, trainable_on


@pytest.fixture
def toy():
    register(SYSTEM)
    yield SYSTEM
    SYSTEMS.pop(SYSTEM.name)


def test_a_new_system_runs_through_the_cli_and_the_explorer(toy, small_profile, tmp_path, capsys):
    small_profile()
    out = tmp_path / "maxpool12"
    assert main(["train", "--method", "maxpool", "--bits", "12", "--iterations", "1", "--samples", "64",
                 "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["method"] == "maxpool"
    capsys.readouterr()
    assert main(["evaluate", "--run", str(out)]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["map"] <= 1
    bundle = bundle_from_runs(out)
    Image.fromarray(bundle.images("test", [0])[0]).save(tmp_path / "q.png")
    assert main(["query", "--run", str(out), "--k", "3", str(tmp_path / "q.png")]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) >= 3
    system = bundle.systems["maxpool12"]
    assert isinstance(system.model, MaxPoolHash) and system.cam_layer() is system.model.backbone.features[-1]
    hit = retrieve(system, bundle.query(0), 12, bundle.db_labels, bundle.query_labels[0], k=4)
    assert len(hit.ids) == 4 and np.all(np.diff(hit.distances) >= 0)
    cams = explain(system, bundle.query(0), bundle.tensors("train", hit.ids[:2]), hit)
    assert cams.shape[0] == 3 and np.isfinite(cams).all() and cams.max() > 0


def test_a_name_is_registered_once(toy):
    with pytest.raises(BadOption, match="already registered"):
        register(SYSTEM)
    with pytest.raises(BadOption, match="loss terms"):
        System("bad", "Bad", MaxPoolHash, "", terms=("dropout",))


def test_what_a_system_declares_decides_what_runs(toy, small_profile, tmp_path, capsys):
    assert trainable_on("features") == ["adsh", "adsh+esrl"] and "maxpool" not in trainable_on("maps")
    small_profile()
    assert main(["train", "--method", "maxpool", "--freeze-backbone", "--out", str(tmp_path / "f")]) == 2
    assert "--method must be one of ['adsh', 'adsh+esrl'], got 'maxpool'" in capsys.readouterr().err
    assert main(["train", "--method", "fcaenet", "--train-top", "1", "--out", str(tmp_path / "t")]) == 2
    assert "SREM erases regions of the input pixels" in capsys.readouterr().err


def _tiny(n=12, size=32):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.arange(n) % 3


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_every_registered_system_trains_one_tiny_iteration(name):
    system, (x, y) = get_system(name), _tiny()
    torch.manual_seed(0)
    model = system.build(build_backbone("nin" if name == "dnnh" else "minires"), 8, 3)
    cfg = AsymmetricConfig(segments=(8,), iterations=1, epochs=1, samples=12, batch_size=6)
    codes, hist = system.train(model, x, y, cfg, val=(x[:6], y[:6]), progress=False)
    assert codes.shape == (12, 8) and set(torch.unique(codes).tolist()) <= {-1.0, 1.0}
    assert len(hist.loss) >= 1 and np.isfinite(hist.loss).all()
    layer = model.cam_layer()  # a module of the network whose output is a feature map
    assert any(m is layer for m in model.modules())
