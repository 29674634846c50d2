"""Raw or misleading errors a user met, one test per kind: each now ends as one line that names
the file or the option (exit status 2), never as a codec error, a zip error or a bug report."""
import json
import os
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.errors import BadData, BadFile, BadOption, EnvironmentFailure
from fgh_tutorial.retrieval.codes import load_codes, pack_codes, save_codes
from fgh_tutorial.retrieval.index import HammingIndex

from test_faults import _classes, _encode, _error, photos, runs  # noqa: F401 - fixtures
from test_reliability import TRAIN, fast, tiny  # noqa: F401 - fixtures

NOT_UTF8 = os.fsdecode(b"caf\xe9-\xff.png")  # a Latin-1 name: not UTF-8


def test_a_file_name_that_is_not_utf8_is_read_like_any_other(runs, tmp_path, capsys):
    from fgh_tutorial.data import default_transform, load_dataset
    from fgh_tutorial.training.frozen import data_digest

    data = photos(tmp_path / "p")
    Image.new("RGB", (20, 16), (200, 10, 10)).save(data / "a" / NOT_UTF8)
    assert _encode(runs[0], data, tmp_path / "c.npz") == 0
    listing = json.loads((tmp_path / "c.paths.json").read_text())
    assert "a/" + NOT_UTF8 in listing["paths"] and len(listing["paths"]) == 8
    assert (data / listing["paths"][listing["paths"].index("a/" + NOT_UTF8)]).is_file()
    capsys.readouterr()
    folder = _classes(tmp_path / "classes")
    Image.new("RGB", (12, 14), (1, 2, 3)).save(folder / "class0" / NOT_UTF8)
    for split in ("train", "test"):  # frozen mode's fingerprint of the files, the odd name in one of them
        assert len(data_digest(load_dataset("folder", folder, split, default_transform(16)))) == 64
    (folder / "class1" / NOT_UTF8).write_bytes(b"not an image")
    assert main(["verify", "--data", str(folder), "--quiet"]) == 2
    out = capsys.readouterr().out
    assert "caf\\xe9-\\xff.png: " in out and "cannot decode" in out


def test_damaged_codes_and_index_files_name_the_file(tmp_path):
    words = pack_codes(np.ones((4, 12), np.int8))
    save_codes(tmp_path / "ok.npz", words, 12)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ok.npz").read_bytes()[:60])
    np.savez(tmp_path / "field.npz", words=words, bits=np.array(["12"]))
    np.savez(tmp_path / "pair.npz", words=words, bits=np.array([12, 24]))
    np.save(tmp_path / "plain.npy", words)
    cases = {"cut.npz": "cut.npz is not a codes file", "field.npz": "field.npz is not a codes file .*its 'bits' field",
             "pair.npz": "'bits' field must be one positive integer", "plain.npy": "plain.npy is not a codes file"}
    for name, message in cases.items():
        for read in (load_codes, HammingIndex.load):
            with pytest.raises(BadFile, match=message):
                read(tmp_path / name)
    from fgh_tutorial.retrieval.sharded import ShardedIndex

    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "index.json").write_text('{"bits": 12, "ntot')
    with pytest.raises(BadFile, match="index.json is damaged"):  # read before Ray is joined
        ShardedIndex.load(tmp_path / "index")
    (tmp_path / "index" / "index.json").write_text('{"bits": 12, "ntotal": 4, "files": ["../x.npz"]}')
    with pytest.raises(BadFile, match="index.json is damaged"):
        ShardedIndex.load(tmp_path / "index")


def test_lr_options_and_sizes_are_checked_before_any_work(tmp_path, capsys, monkeypatch, fast):
    import fgh_tutorial.runs.train as runs_module

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before the options were checked")

    monkeypatch.setattr(runs_module, "course_splits", no_data)
    for more, expected in ((["--lr", "inf"], "--lr must be a positive, finite number, got inf"),
                           (["--lr", "nan"], "--lr must be a positive, finite number"),
                           (["--image-size", "100000"], "--image-size 100000"),
                           (["--image-size", "4000", "--batch-size", "100000"], "of memory as input alone"),
                           (["--image-size", "4"], "under 8 px")):
        assert main([*TRAIN, *more, "--out", str(tmp_path / "r")]) == 2, more
        line = _error(capsys)
        assert expected in line and "config.json" not in line, line
    assert not (tmp_path / "r").exists()


def test_resnet_weights_that_do_not_fit_or_lack_the_classifier(tmp_path, monkeypatch):
    import torchvision

    from fgh_tutorial.models.backbones import build_backbone

    state = torchvision.models.resnet18(weights=None).state_dict()
    trunk = {k: v for k, v in state.items() if not k.startswith("fc.")}
    torch.save(trunk, tmp_path / "trunk.pth")  # no classifier: the backbone does not need one
    net = build_backbone("resnet18", weights=str(tmp_path / "trunk.pth"))
    assert torch.equal(net.features[0].weight, trunk["conv1.weight"])
    torch.save({**trunk, "conv1.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "other.pth")
    with pytest.raises(BadFile, match=r"other.pth does not fit resnet18 \(shapes conv1.weight"):
        build_backbone("resnet18", weights=str(tmp_path / "other.pth"))
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(BadFile, match="r34.pth does not fit resnet18 .*unexpected layer1.2"):
        build_backbone("resnet18", weights=str(tmp_path / "r34.pth"))

    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", offline)
    with pytest.raises(EnvironmentFailure, match="could not download the ImageNet weights of resnet18.*--weights"):
        build_backbone("resnet18", pretrained=True)


def test_a_folder_of_one_image_per_class_has_no_queries(tmp_path, capsys):
    root = _classes(tmp_path / "data", per_class=1, classes=500)
    assert main(["train", "--dataset", "folder", "--data", str(root), "--out", str(tmp_path / "r")]) == 2
    line = _error(capsys)
    assert "no queries: 500 images in 500 class folders" in line and "at least 2 images" in line
    assert not (tmp_path / "r" / "config.json").exists()
    with pytest.raises(BadData, match="no queries"):
        from fgh_tutorial.data import load_dataset

        load_dataset("folder", root, "test")


def test_query_of_a_folder_says_it_is_a_folder(runs, tmp_path, capsys):
    assert main(["query", "--run", str(runs[0]), str(tmp_path)]) == 2
    assert f"{tmp_path}: a folder, not an image file" in _error(capsys)


def test_frozen_mode_under_torchrun_is_refused_for_what_it_is(tmp_path):
    from fgh_tutorial.runs.train import train_run
    from fgh_tutorial.training.distributed import Distributed

    with pytest.raises(BadOption, match="--freeze-backbone .* without torchrun"):
        train_run(tmp_path / "r", freeze_backbone=True, dist=Distributed(0, 1, torch.device("cpu")), progress=False)
    assert not (tmp_path / "r").exists()


def test_encode_advises_only_what_encode_can_do(runs, tmp_path, capsys):
    data = photos(tmp_path / "p")
    (data / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    assert _encode(runs[0], data, tmp_path / "c.npz") == 2
    line = _error(capsys)
    assert "broken.jpg: cannot decode image" in line and "verify --data" in line and "--on-bad-image" not in line
    assert not (tmp_path / "c.npz").exists()


def test_bundles_of_other_folders_name_them(tmp_path, fast):
    from fgh_tutorial.app.bundle import bundle_from_runs

    for name in ("a", "b"):
        root = _classes(tmp_path / f"data_{name}", seed=ord(name))
        assert main(["train", "--dataset", "folder", "--data", str(root), "--bits", "8", "--iterations", "1",
                     "--samples", "16", "--image-size", "16", "--out", str(tmp_path / name)]) == 0
    with pytest.raises(BadData) as err:
        bundle_from_runs(tmp_path / "a", tmp_path / "b")
    assert f"from {tmp_path / 'data_b'}" in str(err.value) and f"from {tmp_path / 'data_a'}" in str(err.value)
    assert "('folder', 64)" not in str(err.value)


def test_errors_from_shard_files_are_one_line(tmp_path):
    from fgh_tutorial.retrieval.sharded import Shard

    save_codes(tmp_path / "s.npz", pack_codes(np.ones((3, 8), np.int8)), 8, ids=np.array([0, 2, 1]))
    with pytest.raises(BadFile, match="s.npz: a shard file needs 'ids'"):
        Shard(8).load(tmp_path / "s.npz")
    assert Path(tmp_path / "s.npz").is_file()
