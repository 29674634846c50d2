"""Run folders under faults: a kill during every write, a folder reused with other settings or
data, concurrent writers, changed files, crafted checkpoints, bad image files.

Training is replaced by a fast stand-in (``fast_train``) where a test is about the folder and
not about learning: it writes a checkpoint the way the trainer does and returns codes V.
One test trains for real and checks that resuming after a kill gives the uninterrupted result.
"""
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.runs import folder as run_folder, train as run_train
from fgh_tutorial.runs.folder import evaluate_run, load_run, query_run, run_database
from fgh_tutorial.runs.lock import LOCK, RunLock, RunLocked
from fgh_tutorial.runs.manifest import RunFolderError, check_run, sha256
from fgh_tutorial.runs.train import train_run
from fgh_tutorial.systems import System
from fgh_tutorial.training.asymmetric import AsymmetricHistory
from fgh_tutorial.training.checkpoints import load_checkpoint, save_checkpoint
from fgh_tutorial.training import profiles

TRAIN = ["train", "--dataset", "synthetic", "--bits", "8", "--iterations", "1", "--samples", "64"]


@pytest.fixture(autouse=True)
def tiny(monkeypatch, small_profile):
    """The small profile (conftest.py), and its splits drawn once per test session."""
    small_profile()
    real = run_train.course_splits

    def cached(prof, progress=False, on_bad_image="fail", exclude=()):
        if prof.dataset != "synthetic":
            return real(prof, progress=progress, on_bad_image=on_bad_image, exclude=exclude)
        key = (prof.per_class, prof.per_class_query, prof.per_class_val, prof.image_size, prof.seed)
        if key not in _SPLITS:
            _SPLITS[key] = real(prof)
        return _SPLITS[key]

    for module in (run_train, run_folder):  # training and reading a run load the splits
        monkeypatch.setattr(module, "course_splits", cached)


_SPLITS = {}


def fast_train(self, model, images, labels, cfg=None, checkpoint_dir=None, **kwargs):
    V = torch.where(torch.randn(len(labels), model.bits, generator=torch.Generator().manual_seed(1)) >= 0, 1.0, -1.0)
    if checkpoint_dir is not None:
        save_checkpoint(Path(checkpoint_dir) / "asymmetric.pt", {"V": V, "iteration": 1, "epoch": 0})
    return V, AsymmetricHistory(loss=[0.5])


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(System, "train", fast_train)


class Killed(BaseException):
    """The process dies here (not an Exception: nothing catches it on the way out)."""


def _one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip() and "it/s]" not in line]  # no progress bars
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _writes(monkeypatch, root, fail_at=None):
    """Count (and name) the atomic renames into ``root``; raise Killed at the ``fail_at``-th."""
    seen, real = [], os.replace

    def replace(src, dst):
        if Path(root) not in Path(dst).parents:  # not a run's file (a compiler cache, ...)
            return real(src, dst)
        seen.append(Path(dst).name)
        if fail_at is not None and len(seen) == fail_at:
            raise Killed(f"killed while writing {Path(dst).name}")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    return seen


@pytest.mark.slow
def test_kill_during_every_write(tmp_path, monkeypatch, capsys, fast):
    with monkeypatch.context() as m:
        names = _writes(m, tmp_path)
        train_run(tmp_path / "whole", bits=8, iterations=1, samples=64, progress=False)
    assert names == ["config.json", "asymmetric.pt", "model.pt", "db_codes.npz", "metrics.json", "manifest.json"]
    for k, name in enumerate(names, 1):
        out = tmp_path / f"killed_at_{name}"
        with monkeypatch.context() as m:
            _writes(m, tmp_path, fail_at=k)
            with pytest.raises(Killed):
                train_run(out, bits=8, iterations=1, samples=64, progress=False)
        assert not (out / "manifest.json").exists()
        capsys.readouterr()
        assert main(["evaluate", "--run", str(out)]) == 2, name
        line = _one_error_line(capsys.readouterr().err)
        assert ("unfinished run" in line and "--resume" in line) if k > 1 else "manifest.json is missing" in line
        assert main(["query", "--run", str(out), str(tmp_path)]) == 2
        capsys.readouterr()
        if k > 1:  # the folder says what it holds; plain train refuses to mix runs
            assert main([*TRAIN, "--out", str(out)]) == 2
            assert "already holds an unfinished run (adsh, 8 bits" in _one_error_line(capsys.readouterr().err)
        assert main([*TRAIN, "--resume", "--out", str(out)]) == 0, name
        check_run(out)
        assert np.array_equal(run_database(out)[0], run_database(tmp_path / "whole")[0])
        assert main(["evaluate", "--run", str(out)]) == 0


@pytest.mark.slow
def test_real_training_resumes_exactly_after_a_kill(tmp_path, monkeypatch):
    args = dict(bits=8, iterations=2, samples=64, progress=False)
    whole = train_run(tmp_path / "whole", **args)
    with monkeypatch.context() as m:
        _writes(m, tmp_path, fail_at=3)  # config.json, the first iteration's checkpoint, then killed in the second
        with pytest.raises(Killed):
            train_run(tmp_path / "cut", **args)
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "asymmetric.pt")["iteration"] == 1
    resumed = train_run(tmp_path / "cut", resume=True, **args)
    assert resumed["map"] == whole["map"] and resumed["history"] == whole["history"]


def test_folder_reused_with_other_bits_method_or_data(tmp_path, monkeypatch, capsys, fast):
    out = str(tmp_path / "run")
    assert main([*TRAIN, "--out", out]) == 0
    first = json.loads((tmp_path / "run" / "manifest.json").read_text())
    capsys.readouterr()
    for other in (["--bits", "12"], ["--method", "exchnet"], ["--epochs", "2"]):
        assert main([*TRAIN, *other, "--out", out]) == 2
        assert "already holds a finished run (adsh, 8 bits, synthetic data, cpu profile)" in \
            _one_error_line(capsys.readouterr().err)
        assert main([*TRAIN, *other, "--resume", "--out", out]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "cannot resume" in line and "--force" in line
    assert "bits=8 there, 12 now" in (main([*TRAIN, "--bits", "12", "--resume", "--out", out]) and
                                      capsys.readouterr().err)
    assert json.loads((tmp_path / "run" / "manifest.json").read_text()) == first  # untouched by the refusals
    assert main([*TRAIN, "--resume", "--out", out]) == 0  # the same run, finished: nothing to do
    assert json.loads((tmp_path / "run" / "manifest.json").read_text()) == first
    assert main([*TRAIN, "--bits", "12", "--method", "exchnet", "--force", "--out", out]) == 0
    config = load_run(out)[0]
    assert (config.bits, config.method) == (12, "exchnet") and run_database(out)[0].shape[1] == 12
    capsys.readouterr()
    # other data of the same size (another seed), then more data: evaluate refuses, query warns
    for change in ({"seed": 7}, {"per_class": 3}):
        with monkeypatch.context() as m:
            m.setitem(profiles.PROFILES, "cpu", replace(profiles.PROFILES["cpu"], **change))
            assert main(["evaluate", "--run", out]) == 2
            line = _one_error_line(capsys.readouterr().err)
            assert "the data changed since the run" in line and ("generator's settings" in line or "108 then, 162 now" in line)
            image = tmp_path / "q.png"
            Image.new("RGB", (32, 32), (90, 120, 30)).save(image)
            assert main(["query", "--run", out, "--k", "2", str(image)]) == 0
            out_err = capsys.readouterr()
            assert out_err.err.startswith("warning: the data changed since the run") and "q.png" in out_err.out
            with pytest.raises(RunFolderError, match="resume"):
                train_run(out, bits=12, method="exchnet", iterations=1, samples=64, progress=False, resume=True)


def _folder_dataset(root, per_class=5):
    for c, colour in enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200)]):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (24, 20), tuple(v + 8 * i for v in colour)).save(root / f"class{c}" / f"{i}.png")
    return root


@pytest.mark.slow
def test_real_data_changes_and_bad_images(tmp_path, capsys):
    """A user's folder, trained for real (images decoded): a bad file stops training with one
    line, or is skipped and listed; later changes to the folder are found."""
    data = _folder_dataset(tmp_path / "imgs")
    base = ["train", "--dataset", "folder", "--data", str(data), "--bits", "8", "--iterations", "1", "--samples", "16"]
    (data / "class1" / "3.png").write_bytes(b"\x89PNG broken")
    (data / "class1" / "._3.png").write_bytes(b"\x00\x05\x16\x07")  # ignored, never an image
    assert main([*base, "--out", str(tmp_path / "fail")]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "class1/3.png: cannot decode image" in line and "--on-bad-image skip" in line
    out = tmp_path / "skip"
    assert main([*base, "--on-bad-image", "skip", "--out", str(out)]) == 0
    skipped = json.loads((out / "skipped_images.json").read_text())
    assert [Path(s["path"]).name for s in skipped] == ["3.png"] and "cannot decode" in skipped[0]["reason"]
    assert main(["evaluate", "--run", str(out)]) == 0  # the same files left out again: the same data
    capsys.readouterr()
    os.utime(data / "class0" / "0.png", (1, 1))  # touched only: a warning
    assert main(["evaluate", "--run", str(out)]) == 0
    assert "warning: the data of" in capsys.readouterr().err
    (data / "class2" / "0.png").rename(data / "class0" / "9.png")  # one image moved to another class
    assert main(["evaluate", "--run", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "the data changed since the run" in line and "train: " in line


def test_lock_stops_a_second_writer_and_a_stale_lock_is_taken(tmp_path, capsys, fast):
    out = tmp_path / "run"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        out.mkdir()
        (out / LOCK).write_text(json.dumps({"pid": sleeper.pid, "host": socket.gethostname(), "since": 0}))
        assert main([*TRAIN, "--out", str(out)]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"is being written by process {sleeper.pid}" in line and "delete the lock file" in line
        assert main(["evaluate", "--run", str(out)]) == 2
        assert "no finished run yet" in _one_error_line(capsys.readouterr().err)
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder died: its lock is stale and taken over
    assert main([*TRAIN, "--out", str(out)]) == 0 and not (out / LOCK).exists()
    with RunLock(out):
        with pytest.raises(RunLocked):
            RunLock(out).acquire()
    assert not (out / LOCK).exists()


def test_files_changed_after_the_run_are_detected(tmp_path, capsys, fast):
    out = tmp_path / "run"
    train_run(out, bits=8, iterations=1, samples=64, progress=False)
    with np.load(out / "db_codes.npz") as f:
        arrays = {k: f[k] for k in f.files}
    arrays["labels"][0] += 1  # one database label changed by hand
    np.savez(out / "db_codes.npz", **arrays)
    assert main(["evaluate", "--run", str(out)]) == 2
    assert "db_codes.npz was changed after the run was written" in _one_error_line(capsys.readouterr().err)
    (out / "db_codes.npz").unlink()
    with pytest.raises(RunFolderError, match="db_codes.npz is missing"):
        load_run(out)


class Payload:
    """Unpickling this creates the file ``marker``: code running from a checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_payload_checkpoint_never_runs(tmp_path, capsys, fast):
    import pickle

    marker = tmp_path / "pwned"
    torch.save({"model": Payload(marker)}, tmp_path / "evil.pt")
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Payload(marker)))
    for name in ("evil.pt", "evil.pkl"):
        with pytest.raises(ValueError, match=f"{name} is not a readable checkpoint"):
            load_checkpoint(tmp_path / name)
    from fgh_tutorial.app.bundle import load_bundle
    from fgh_tutorial.models.backbones import build_backbone

    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_bundle(tmp_path / "evil.pt")
    for name in ("resnet18", "efficientnet_lite0"):
        with pytest.raises((ValueError, ImportError), match="evil.pt is not a readable state dict|needs the extra"):
            build_backbone(name, weights=str(tmp_path / "evil.pt"))
    # a run whose model.pt was replaced by the payload, with the manifest forged to match
    out = tmp_path / "run"
    train_run(out, bits=8, iterations=1, samples=64, progress=False)
    (out / "model.pt").write_bytes((tmp_path / "evil.pt").read_bytes())
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["files"]["model.pt"] = {"sha256": sha256(out / "model.pt"), "size": (out / "model.pt").stat().st_size}
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["evaluate", "--run", str(out)]) == 2
    assert "model.pt is not a readable checkpoint" in _one_error_line(capsys.readouterr().err)
    assert not marker.exists()


def test_library_functions_check_their_run_arguments(tmp_path, fast):
    with pytest.raises(ValueError, match="force and resume exclude each other"):
        train_run(tmp_path / "x", force=True, resume=True)
    with pytest.raises(ValueError, match="on_bad_image must be one of"):
        train_run(tmp_path / "x", on_bad_image="ignore")
    with pytest.raises(ValueError, match="device 'gpu0' is not a device name"):
        train_run(tmp_path / "x", device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda' needs a CUDA GPU"):
            train_run(tmp_path / "x", device="cuda")
    assert not (tmp_path / "x").exists()
    out = tmp_path / "run"
    train_run(out, bits=8, iterations=1, samples=64, progress=False)
    assert evaluate_run(out)["bits"] == 8
    for k in (0, 2.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            query_run(out, [tmp_path], k)
    with pytest.raises(ValueError, match="images: give at least one"):
        query_run(out, [])
    (tmp_path / "notes.txt").write_text("not a picture")
    with pytest.raises(ValueError, match="notes.txt: cannot decode image"):
        query_run(out, [tmp_path / "notes.txt"])
    (out / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        train_run(out / "file", bits=8, progress=False)
