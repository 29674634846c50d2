"""A run's settings: the one table of ``train``'s options (runs/options.py), ``RunConfig``
(runs/config.py) and config.json, as written today and by earlier versions."""
import argparse
import json
from dataclasses import fields, replace

import numpy as np
import pytest
from PIL import Image

from fgh_tutorial.app.serve import usable_runs
from fgh_tutorial.cli import main
from fgh_tutorial.cli.parser import add_options
from fgh_tutorial.errors import BadFile, BadOption, BadOptionType, MissingFile
from fgh_tutorial.files import read_json, write_json
from fgh_tutorial.runs.config import RunConfig
from fgh_tutorial.runs.encoding import read_encoded
from fgh_tutorial.runs.folder import evaluate_run, load_run
from fgh_tutorial.runs.manifest import MANIFEST, finish_run
from fgh_tutorial.runs.options import OPTIONS, SETTINGS
from fgh_tutorial.systems import System

from test_reliability import fast_train

ARGS = ["train", "--bits", "4,8", "--method", "fcaenet", "--schedule", "paper", "--lr", "0.01", "--batch-size", "4",
        "--workers", "0", "--iterations", "2", "--samples", "16", "--positives", "dataset"]
# config.json of the run ARGS trains, as the command line wrote it before RunConfig (but for the data's
# fingerprint and class count, and the solver's fields, which the training layer owns)
TODAY = {"dataset": "synthetic", "data": None, "bits": 12, "method": "fcaenet", "profile": "cpu", "iterations": 2,
         "epochs": 20, "samples": 16, "device": None, "on_bad_image": "fail", "lengths": [4, 8], "lr": 0.01,
         "batch_size": 4, "schedule": {"segments": [4, 8], "iterations": 2, "epochs": 20, "samples": 16, "lr": 0.01,
                                       "batch_size": 4, "optimizer": "sgd", "schedule": "paper", "milestones": [1, 2],
                                       "positives": "dataset", "workers": 0},
         "workers": 0, "positives": "dataset", "n_classes": 54}
# the first version's config.json: no code lengths, options, data policy, class count or fingerprint
FIRST = {"dataset": "synthetic", "data": None, "bits": 12, "method": "fcaenet", "profile": "cpu", "iterations": 2,
         "epochs": 20, "samples": 16, "device": None, "schedule": {"iterations": 2, "epochs": 20}}


def test_the_table_makes_the_arguments_and_the_config():
    assert [f.name for f in fields(RunConfig)] == [o.attr for o in SETTINGS] + ["solver", "n_classes", "data_fingerprint"]
    parser = argparse.ArgumentParser()
    add_options(parser, OPTIONS)
    args = vars(parser.parse_args(["--out", "x"]))
    assert args == {o.name: o.default if o.name != "out" else "x" for o in OPTIONS}
    assert RunConfig.checked(**{o.name: args[o.name] for o in SETTINGS}) == RunConfig()
    with pytest.raises(SystemExit):  # excluded pairs stay excluded
        parser.parse_args(["--out", "x", "--force", "--resume"])


def test_settings_from_python_are_checked_as_on_the_command_line(tmp_path):
    config = RunConfig.checked(bits="4,8", lr=0.01, freeze_backbone=True)
    assert (config.lengths, config.bits, config.lr, config.freeze_backbone, config.method) == ((4, 8), 12, 0.01, True, "adsh")
    for settings, error, message in (({"nope": 1}, BadOptionType, "unknown run options: nope"),
                                     ({"lr": float("inf")}, BadOption, "--lr must be a positive, finite number, got inf"),
                                     ({"batch_size": 0}, BadOption, "--batch-size must be an integer of at least 1, got 0"),
                                     ({"backbone": "vgg"}, BadOption, "backbone must be one of"),
                                     ({"on_bad_image": "ignore"}, BadOption, "on_bad_image must be one of"),
                                     ({"method": "maxpool"}, BadOption, "unknown system 'maxpool'"),
                                     ({"bits": "12,12"}, BadOption, "each code length once"),
                                     ({"weights": str(tmp_path / "w.pt")}, MissingFile, "weights file not found")):
        with pytest.raises(error, match=message):
            RunConfig.checked(**settings)
    (tmp_path / "w.pt").write_bytes(b"")
    assert RunConfig.checked(weights=str(tmp_path / "w.pt")).weights == str((tmp_path / "w.pt").resolve())


def test_config_json_round_trips():
    config = replace(RunConfig.checked(bits="4,8", schedule="paper", compile=True), n_classes=3,
                     solver={"schedule": "paper", "lr": 0.1}, data_fingerprint={"train": {}})
    assert RunConfig.from_json(json.loads(json.dumps(config.to_json()))) == config
    assert "compile" in config.to_json() and "compile" not in RunConfig().to_json()  # options only when given
    with pytest.raises(BadFile, match="lacks method"):
        RunConfig.from_json({"dataset": "synthetic", "bits": 8})


@pytest.fixture
def trained(tmp_path, monkeypatch, small_profile):
    small_profile()
    monkeypatch.setattr(System, "train", fast_train)
    out = tmp_path / "run"
    assert main([*ARGS, "--out", str(out)]) == 0
    return out


def test_config_json_is_written_as_before(trained, capsys):
    written = json.loads((trained / "config.json").read_text())
    assert list(written) == [*TODAY, "data_fingerprint"]
    assert {k: v for k, v in written.items() if k not in ("schedule", "data_fingerprint")} == \
        {k: v for k, v in TODAY.items() if k != "schedule"}
    assert {k: written["schedule"][k] for k in TODAY["schedule"]} == TODAY["schedule"]


@pytest.mark.parametrize("old", [TODAY, FIRST], ids=["today", "first"])
def test_old_config_json_files_load(old, trained, tmp_path, capsys):
    """A run folder whose config.json has the keys of an earlier version is evaluated, queried,
    encoded and explored."""
    manifest = read_json(trained / MANIFEST)
    record = {**old, **({"data_fingerprint": manifest["config"]["data_fingerprint"]} if old is TODAY else {})}
    write_json(trained / "config.json", record)
    finish_run(trained, record, [name for name in manifest["files"] if name != "config.json"])
    config = load_run(trained)[0]
    assert config.lengths == ((4, 8) if old is TODAY else (12,)) and config.method == "fcaenet"
    assert (config.lr, config.schedule, config.on_bad_image) == ((0.01, "paper", "fail") if old is TODAY else
                                                                  (None, None, "fail"))
    assert ("per_length" in evaluate_run(trained)) == (old is TODAY)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(photos / f"{i}.png")
    capsys.readouterr()
    assert main(["evaluate", "--run", str(trained)]) == 0
    assert main(["query", "--run", str(trained), "--k", "2", str(photos / "0.png")]) == 0
    assert main(["encode", "--run", str(trained), "--data", str(photos), "--out", str(tmp_path / "codes.npz"),
                 "--bits", "8" if old is TODAY else "12", "--no-ray", "--workers", "0", "--quiet"]) == 0
    assert read_encoded(tmp_path / "codes.npz")[1] == (8 if old is TODAY else 12)
    assert usable_runs([trained]) == ([trained], [])
