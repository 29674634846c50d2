"""Frozen-backbone mode and the training options of the command line, on tiny fake folders."""
import json
import os

import numpy as np
import pytest
import torch
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.data import default_transform, load_dataset
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.encode import encode
from fgh_tutorial.retrieval.codes import binarize
from fgh_tutorial.runs.options import parse_lengths
from fgh_tutorial.training import frozen
from fgh_tutorial.training.asymmetric import AsymmetricConfig

from test_loader import fake_folder


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = frozen.extract_features

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(frozen, "extract_features", spy)
    return calls


@pytest.mark.slow
def test_cache_is_reused_and_invalidated_when_the_data_or_the_backbone_changes(tmp_path, counted):
    root = fake_folder(tmp_path / "data")
    cache = tmp_path / "run" / frozen.FEATURES_FILE

    def splits():
        ds = load_dataset("folder", root, "train", default_transform(64))  # efficientnet-lite0 needs 64 px or more
        return {"train": (ds, torch.as_tensor(ds.targets))}

    torch.manual_seed(0)
    net = build_backbone("minires")
    first = frozen.cached_features(net, splits(), cache, workers=0, progress=False)
    assert len(counted) == 1 and cache.exists() and first["train"][0].shape == (18, 128)
    again = frozen.cached_features(net, splits(), cache, workers=0, progress=False)
    assert len(counted) == 1 and torch.equal(first["train"][0], again["train"][0])  # read from the cache

    image = root / "train" / "class_0" / "0.jpg"
    Image.new("RGB", (20, 14), (9, 9, 9)).save(image)  # an image changes
    os.utime(image, ns=(1, 1))
    changed = frozen.cached_features(net, splits(), cache, workers=0, progress=False)
    assert len(counted) == 2 and not torch.equal(changed["train"][0][0], first["train"][0][0])
    Image.new("RGB", (20, 14), (1, 2, 3)).save(root / "train" / "class_1" / "new.jpg")  # an image is added
    assert len(frozen.cached_features(net, splits(), cache, workers=0, progress=False)["train"][0]) == 19
    assert len(counted) == 3

    with torch.no_grad():  # other weights
        next(net.parameters())[0] += 1
    frozen.cached_features(net, splits(), cache, workers=0, progress=False)
    assert len(counted) == 4
    lite = build_backbone("efficientnet_lite0", pretrained=True)  # another backbone
    feats = frozen.cached_features(lite, splits(), cache, workers=0, progress=False)
    assert len(counted) == 5 and feats["train"][0].shape == (19, 1280)
    frozen.cached_features(lite, splits(), cache, workers=0, progress=False)
    assert len(counted) == 5


def test_the_folded_head_equals_training_on_standardised_features():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(60) % 3
    f = torch.randn(60, 16, generator=g) * 3 + 5
    f[:, 0] += 4 * labels
    cfg = AsymmetricConfig(segments=(4, 8), iterations=2, samples=40, batch_size=8, optimizer="adamw", lr=1e-2)
    head, V, hist = frozen.train_head({"train": (f, labels), "val": (f[:12], labels[:12])}, cfg, progress=False)
    assert V.shape == (60, 12) and len(hist.val_map) == 2
    mu, sigma = f.mean(0), f.std(0)
    z = (f - mu) / sigma
    unfolded = torch.nn.Linear(16, 12)
    with torch.no_grad():
        unfolded.weight.copy_(head.fc.weight * sigma)
        unfolded.bias.copy_(head.fc.bias + head.fc.weight @ mu)
    assert torch.allclose(torch.tanh(unfolded(z)), head(f), atol=1e-5)
    with pytest.raises(ValueError, match="frozen-backbone mode"):
        frozen.train_head({"train": (f, labels)}, AsymmetricConfig(segments=(12,), terms=("srem", "esrl")))


def test_bits_lists():
    assert parse_lengths("12,24,32,48") == (12, 24, 32, 48) and parse_lengths(48) == (48,)
    for bad in ("0", "12,x", "1000,100"):
        with pytest.raises(ValueError, match="bits"):
            parse_lengths(bad)


@pytest.mark.slow
def test_cli_frozen_mode_end_to_end(tmp_path, capsys, counted):
    root = fake_folder(tmp_path / "data")
    out = tmp_path / "frozen"
    args = ["train", "--dataset", "folder", "--data", str(root), "--bits", "4,8", "--method", "adsh",
            "--backbone", "minires", "--image-size", "16", "--freeze-backbone", "--iterations", "2",
            "--workers", "0", "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    assert config["bits"] == 12 and config["lengths"] == [4, 8] and config["freeze_backbone"] is True
    assert config["schedule"]["optimizer"] == "adamw" and config["epochs"] == 2 and len(counted) == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["lengths"] == [4, 8] and set(metrics["per_length"]) == {"4", "8"}
    assert metrics["per_length"]["8"]["bits"] == 8 and metrics["per_length"]["4"]["queries"] == 9
    assert (out / frozen.FEATURES_FILE).exists()

    assert main(["evaluate", "--run", str(out)]) == 0  # the whole network encodes the query images
    evaluated = json.loads(capsys.readouterr().out)
    for b in ("4", "8"):
        assert evaluated["per_length"][b]["map"] == pytest.approx(metrics["per_length"][b]["map"], abs=1e-6)
    query = str(root / "test" / "class_2" / "1.jpg")
    assert main(["query", "--run", str(out), "--bits", "4", "--k", "3", query]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == query and len(lines) == 4 and "distance" in lines[1]
    assert main(["query", "--run", str(out), "--bits", "5", query]) == 2
    assert "not 5" in capsys.readouterr().err

    assert main(args + ["--force", "--lr", "0.01"]) == 0  # trained again on the cached features
    assert len(counted) == 1 and json.loads((out / "config.json").read_text())["schedule"]["lr"] == 0.01


@pytest.mark.slow
def test_cli_fine_tuning_options_end_to_end(tmp_path, capsys):
    root = fake_folder(tmp_path / "data")
    out = tmp_path / "tuned"
    assert main(["train", "--dataset", "folder", "--data", str(root), "--bits", "8", "--method", "fcaenet",
                 "--backbone", "minires", "--image-size", "16", "--schedule", "paper", "--iterations", "2",
                 "--epochs", "1", "--samples", "8", "--batch-size", "4", "--lr", "0.01", "--workers", "2",
                 "--positives", "dataset", "--out", str(out)]) == 0
    capsys.readouterr()
    config = json.loads((out / "config.json").read_text())
    cfg = config["schedule"]
    assert (cfg["schedule"], cfg["lr"], cfg["batch_size"], cfg["workers"], cfg["positives"]) == ("paper", 0.01, 4, 2, "dataset")
    assert cfg["milestones"] == [1, 2] and config["image_size"] == 16
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history["lr"] == pytest.approx([0.01, 0.001])  # divided by 10 at the first milestone
    from fgh_tutorial.runs.folder import load_run, run_database

    _, model, prof = load_run(out)
    assert prof.image_size == 16 and prof.backbone == "minires" and model.bits == 8
    assert run_database(out)[0].shape == (16, 8)
    assert main(["evaluate", "--run", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["bits"] == 8


def test_cli_option_errors(tmp_path, capsys):
    root = fake_folder(tmp_path / "data", per_split=(2, 1))
    base = ["train", "--dataset", "folder", "--data", str(root), "--backbone", "minires", "--image-size", "16"]
    assert main(base + ["--freeze-backbone", "--method", "fcaenet", "--out", str(tmp_path / "a")]) == 2
    assert "--freeze-backbone" in capsys.readouterr().err
    assert main(base + ["--weights", str(tmp_path / "none.pth"), "--out", str(tmp_path / "b")]) == 2
    assert "weights file not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["--bits", "12,0", "--out", str(tmp_path / "c")])
    with pytest.raises(SystemExit):
        main(base + ["--schedule", "cosine", "--out", str(tmp_path / "d")])
    out = capsys.readouterr()
    assert "bits" in out.err and "schedule" in out.err
    assert "offline" in _help(capsys).lower()


def _help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    return capsys.readouterr().out


def test_codes_of_the_composed_network_match_the_features():
    """The run's network (backbone + folded hash layer) encodes images as the head encodes features."""
    torch.manual_seed(0)
    images, labels = torch.randn(24, 3, 16, 16), torch.arange(24) % 3
    cfg = AsymmetricConfig(segments=(6,), iterations=1, samples=24, batch_size=8, optimizer="adamw")
    model, V, _, feats = frozen.train_frozen(build_backbone("minires"), {"train": (images, labels)}, cfg,
                                             progress=False)
    assert np.array_equal(encode(model, images), frozen.encode_features(model, feats["train"][0]))
    assert binarize(V).shape == (24, 6)
