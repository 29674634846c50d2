"""Partial fine-tuning (--train-top K): stages, the cache of the frozen stages' maps, training the
top on a tiny fake folder, and the errors of its options."""
import json
import os
from collections import namedtuple

import numpy as np
import pytest
import torch
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.data import default_transform, load_dataset
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.encode import encode
from fgh_tutorial.models.stages import backbone_stages, check_top, split_stages
from fgh_tutorial.systems import get_system
from fgh_tutorial.training import stage_maps
from fgh_tutorial.training.asymmetric import AsymmetricConfig
from fgh_tutorial.training.top_stages import train_top

from test_loader import fake_folder


@pytest.mark.parametrize("name, count", [("minires", 4), ("resnet18", 5), ("efficientnet_lite0", 9)])
def test_the_stages_compose_the_backbone(name, count):
    torch.manual_seed(0)
    backbone = build_backbone(name).eval()
    stages = backbone_stages(backbone)
    assert len(stages) == count and stages[0][0] == "stem"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(torch.nn.Sequential(*[m for _, m in stages])(x), backbone.features(x))
        bottom, top = split_stages(backbone, 2)
        assert torch.equal(top(bottom(x)), backbone.features(x))
    assert len(top) == 2 and len(bottom) == count - 2
    top_ids = {id(p) for p in top.parameters()}  # shared, not copied
    assert top_ids <= {id(p) for p in backbone.parameters()} and not top_ids & {id(p) for p in bottom.parameters()}


def test_top_counts_are_checked():
    assert check_top("resnet50", 4) == 5 and check_top("efficientnet_lite0", 8) == 9
    for name, k in (("minires", 4), ("minires", 0), ("resnet18", 5), ("efficientnet_lite0", 9), ("minires", True)):
        with pytest.raises(ValueError, match="--train-top must be 1 to"):
            check_top(name, k)
    with pytest.raises(ValueError, match="nin has no stages"):
        check_top("nin", 1)


@pytest.fixture
def built(monkeypatch):
    calls = []
    real = stage_maps.build_maps

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(stage_maps, "build_maps", spy)
    return calls


def _splits(root):
    def split(name):
        ds = load_dataset("folder", root, name, default_transform(32))
        return ds, torch.as_tensor(ds.targets)
    return {"train": split("train"), "test": split("test")}


def test_the_cache_is_reused_and_rebuilt_when_an_image_or_the_weights_change(tmp_path, built):
    root = fake_folder(tmp_path / "data")
    run = tmp_path / "run"
    torch.manual_seed(0)
    backbone = build_backbone("minires")
    bottom, _ = split_stages(backbone, 1)
    maps = stage_maps.cached_maps(bottom, backbone, _splits(root), 3, run, workers=0, progress=False)
    files = list(run.glob("top_maps.*.npy"))
    assert len(built) == 1 and len(files) == 1 and maps.shape == (18 + 18 + 9, 64, 8, 8)
    assert np.load(files[0], mmap_mode="r").dtype == np.float16
    x = torch.stack([_splits(root)["train"][0][i][0] for i in range(18)])
    with torch.no_grad():  # the database's maps, then those of its mirror images, then the queries'
        plain, mirrored = bottom.eval()(x), bottom(x.flip(3))
    assert torch.allclose(torch.from_numpy(np.asarray(maps.rows("train"), np.float32)), plain, rtol=1e-2, atol=1e-2)
    assert torch.allclose(torch.from_numpy(np.asarray(maps.rows("train", True), np.float32)), mirrored, rtol=1e-2, atol=1e-2)
    assert len(maps.rows("test")) == 9
    first = np.array(maps.rows("train")[0])

    again = stage_maps.cached_maps(bottom, backbone, _splits(root), 3, run, workers=0, progress=False)
    assert len(built) == 1 and again.path == maps.path  # reused
    stage_maps.cached_maps(bottom, backbone, _splits(root), 2, run, workers=0, progress=False)
    assert len(built) == 2  # another cut of the backbone

    image = root / "train" / "class_0" / "0.jpg"
    Image.new("RGB", (20, 14), (9, 9, 9)).save(image)  # an image changes
    os.utime(image, ns=(1, 1))
    changed = stage_maps.cached_maps(bottom, backbone, _splits(root), 3, run, workers=0, progress=False)
    assert len(built) == 3 and changed.path != maps.path and not maps.path.exists()  # the stale file is deleted
    assert not np.array_equal(changed.rows("train")[0], first)
    with torch.no_grad():  # other weights
        next(backbone.parameters())[0] += 1
    stage_maps.cached_maps(bottom, backbone, _splits(root), 3, run, workers=0, progress=False)
    assert len(built) == 4 and len(list(run.glob("top_maps.*.npy"))) == 1
    stage_maps.cached_maps(bottom, backbone, _splits(root), 3, run, workers=0, progress=False)
    assert len(built) == 4 and not list(run.glob(".*.tmp"))


def test_a_cache_that_does_not_fit_the_disk_is_refused(tmp_path, monkeypatch):
    root = fake_folder(tmp_path / "data", per_split=(2, 1))
    backbone = build_backbone("minires")
    bottom, _ = split_stages(backbone, 1)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(stage_maps.shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    with pytest.raises(OSError, match="needs .* but .* has 1 kB free"):
        stage_maps.cached_maps(bottom, backbone, _splits(root), 3, tmp_path / "run", workers=0, progress=False)
    assert not list((tmp_path / "run").glob("*"))


def test_training_batches_draw_plain_or_mirrored_maps(tmp_path):
    splits = {"train": (torch.randn(10, 3, 8, 8), torch.arange(10) % 2)}
    bottom = torch.nn.Conv2d(3, 2, 3, padding=1, bias=False)
    maps = stage_maps.cached_maps(bottom, build_backbone("minires"), splits, 1, tmp_path, progress=False)
    views = maps.views()
    assert len(views) == 10 and views[3][0].dtype == torch.float32 and int(views[3][1]) == 1
    batch = views.augmented_batch(torch.arange(10), torch.Generator().manual_seed(0))
    plain, mirrored = np.asarray(maps.rows("train"), np.float32), np.asarray(maps.rows("train", True), np.float32)
    is_plain = [np.array_equal(b, p) for b, p in zip(batch.numpy(), plain)]
    is_mirrored = [np.array_equal(b, m) for b, m in zip(batch.numpy(), mirrored)]
    assert all(a != b for a, b in zip(is_plain, is_mirrored)) and 0 < sum(is_mirrored) < 10


@pytest.mark.parametrize("method", ["adsh+esrl", "exchnet"])
def test_only_the_top_stages_and_the_head_are_trained(method):
    torch.manual_seed(0)
    images, labels = torch.randn(24, 3, 16, 16), torch.arange(24) % 3
    splits = {"train": (images, labels), "val": (images[:6], labels[:6]), "test": (images[:9], labels[:9])}
    backbone = build_backbone("minires")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    cfg = get_system(method).config(AsymmetricConfig(segments=(6,), iterations=2, samples=24, batch_size=8,
                                                     optimizer="adamw", lr=1e-2))
    model, V, hist, codes = train_top(get_system(method), backbone, 3, splits, cfg, 1, progress=False)
    after = backbone.state_dict()
    changed = {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"5"}  # features.5 = block3, the one top stage; the stem and blocks 1-2 are frozen
    assert V.shape == (24, 6) and len(hist.val_map) == 2 and not model.training
    from_images = encode(model, images[:9])  # the whole network encodes images as the top encoded the maps
    assert codes.shape == (9, 6) and (from_images == codes).mean() > 0.9


def test_cli_train_top_end_to_end(tmp_path, capsys, built):
    root = fake_folder(tmp_path / "data")
    out = tmp_path / "top"
    args = ["train", "--dataset", "folder", "--data", str(root), "--bits", "4,8", "--backbone", "minires",
            "--image-size", "16", "--train-top", "2", "--iterations", "2", "--samples", "12", "--batch-size", "4",
            "--workers", "0", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "caching the frozen stages' maps: 43 maps of 32x8x8, float16" in err  # 16 + 16 mirrored + 2 val + 9 queries
    config = json.loads((out / "config.json").read_text())
    assert config["train_top"] == 2 and config["schedule"]["optimizer"] == "adamw" and len(built) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert main(["evaluate", "--run", str(out)]) == 0  # the ordinary network, frozen stages and trained top, from images
    evaluated = json.loads(capsys.readouterr().out)
    for b in ("4", "8"):
        assert evaluated["per_length"][b]["map"] == pytest.approx(metrics["per_length"][b]["map"], abs=0.05)
    query = str(root / "test" / "class_2" / "1.jpg")
    assert main(["query", "--run", str(out), "--bits", "8", "--k", "3", query]) == 0
    assert capsys.readouterr().out.splitlines()[0] == query
    assert main(["encode", "--run", str(out), "--data", str(root / "test"), "--out", str(tmp_path / "codes.npz"),
                 "--no-ray", "--workers", "1", "--quiet", "--bits", "8"]) == 0
    assert "encoded 9 images" in capsys.readouterr().out
    assert main(args + ["--force", "--lr", "0.01"]) == 0  # trained again on the cached maps
    assert len(built) == 1


def test_cli_train_top_errors(tmp_path, capsys, monkeypatch):
    root = fake_folder(tmp_path / "data", per_split=(2, 1))
    base = ["train", "--dataset", "folder", "--data", str(root), "--image-size", "16", "--workers", "0"]
    cases = [(["--backbone", "minires", "--train-top", "4"], "--train-top must be 1 to 3 for minires"),
             (["--backbone", "nin", "--train-top", "1"], "nin has no stages"),
             (["--backbone", "minires", "--train-top", "1", "--method", "fcaenet"], "SREM erases regions of the input pixels"),
             (["--backbone", "minires", "--train-top", "1", "--freeze-backbone"], "exclude each other"),
             (["--backbone", "efficientnet_lite0", "--train-top", "1", "--method", "exchnet"], "ResNets and minires")]
    for i, (extra, message) in enumerate(cases):
        assert main(base + extra + ["--out", str(tmp_path / f"r{i}")]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and err.startswith("error:")
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(stage_maps.shutil, "disk_usage", lambda path: usage(10 ** 9, 10 ** 9 - 1000, 1000))
    assert main(base + ["--backbone", "minires", "--train-top", "1", "--out", str(tmp_path / "full")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the cache of the frozen stages' maps needs") and len(err.splitlines()) == 1
    with pytest.raises(SystemExit):
        main(base + ["--train-top", "0", "--out", str(tmp_path / "zero")])
    assert "--train-top" in capsys.readouterr().err
