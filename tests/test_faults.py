"""Faults a user met on the command line, one test per kind: hangs, work thrown away or data
destroyed, silent wrong answers. Each builds tiny image folders in tmp_path; runs are trained
for real on a small SynthBirds profile (seconds), or with the fast stand-in of test_reliability
where a test is about the folder and not about learning."""
import errno
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fgh_tutorial.runs.encoding as ef
from fgh_tutorial.cli import main
from fgh_tutorial.errors import BadData, BadFile, BadOption, EnvironmentFailure
from fgh_tutorial.retrieval.codes import pack_codes
from fgh_tutorial.runs.lock import RunLocked, output_lock
from fgh_tutorial.runs.train import train_run
from fgh_tutorial.training import profiles

from test_reliability import TRAIN, fast, tiny  # noqa: F401 - fixtures


def _error(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.strip().splitlines() if line.strip() and "it/s]" not in line]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def photos(root, n=7, seed=0):
    """n small images in nested folders."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        where = root / ("a" if i % 2 else "b/c")
        where.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (20 + i, 24, 3), dtype=np.uint8)).save(where / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs trained for real on a small profile: 8 bits, and 4 and 8 bits at once."""
    mp = pytest.MonkeyPatch()
    small = profiles.PROFILES["cpu"].__class__(**{**profiles.PROFILES["cpu"].__dict__, "per_class": 2,
                                                   "per_class_query": 1, "per_class_val": 1, "image_size": 32})
    mp.setitem(profiles.PROFILES, "cpu", small)
    root = tmp_path_factory.mktemp("runs")
    for name, bits in (("one", "8"), ("two", "4,8")):
        train_run(root / name, bits=bits, iterations=1, samples=64, progress=False)
    yield root / "one", root / "two"
    mp.undo()


def _encode(run, data, out, *more):
    return main(["encode", "--run", str(run), "--data", str(data), "--out", str(out), "--no-ray", "--quiet",
                 "--batch-size", "4", "--shard-size", "4", "--workers", "0", *more])


@pytest.fixture
def never_encode(monkeypatch):
    """Fails the test if an image is encoded: the refusals below must come before any work."""
    def encode_paths(*args, **kwargs):
        raise AssertionError("images were encoded before the command's checks")
    monkeypatch.setattr(ef, "encode_paths", encode_paths)


# ---------------------------------------------------------------- hangs
def test_ray_address_where_nothing_listens_fails_at_once(runs, tmp_path, capsys, never_encode):
    ray = pytest.importorskip("ray")
    import socket

    if ray.is_initialized():
        pytest.skip("this process has joined Ray already")
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    assert main(["encode", "--run", str(runs[0]), "--data", str(photos(tmp_path / "p")), "--out",
                 str(tmp_path / "c.npz"), "--ray", f"127.0.0.1:{port}", "--quiet"]) == 2
    line = _error(capsys)
    assert f":{port}" in line and "nothing answers" in line and "ray status" in line
    assert time.perf_counter() - start < 60
    assert not (tmp_path / "c.npz").exists()


def test_workers_the_cluster_cannot_place_are_refused():
    from fgh_tutorial.retrieval.ray_cluster import check_room

    class Cluster:  # what ray.cluster_resources() says of a 2-CPU machine without GPUs
        @staticmethod
        def cluster_resources():
            return {"CPU": 2.0}

    check_room(Cluster, 2, 1, 0)
    with pytest.raises(BadOption, match="--workers 8 needs 8 CPUs .* the Ray cluster has 2: use --workers 2 or fewer"):
        check_room(Cluster, 8, 1, 0)
    with pytest.raises(BadOption, match="GPUs, and the Ray cluster has none"):
        check_room(Cluster, 1, 1, 1)


# ---------------------------------------------------------------- work thrown away, data destroyed
def test_encode_checks_its_output_before_encoding(runs, tmp_path, capsys, never_encode):
    data = photos(tmp_path / "p")
    (tmp_path / "folder.npz").mkdir()
    cases = [(tmp_path / "folder.npz", "is a folder"),
             (tmp_path / ("x" * 240 + ".npz"), "is too long"),  # a legal name, but its temporary file is not
             (runs[0] / "db_codes.npz", "inside the run folder"),
             (runs[0] / "sub" / "codes.npz", "inside the run folder")]
    digest = hashlib.sha256((runs[0] / "db_codes.npz").read_bytes()).hexdigest()
    for out, expected in cases:
        assert _encode(runs[0], data, out) == 2, out
        assert expected in _error(capsys), out
    assert hashlib.sha256((runs[0] / "db_codes.npz").read_bytes()).hexdigest() == digest  # the run's codes kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz", "p"]  # nothing written


def test_two_encodes_of_one_output_are_serialised(runs, tmp_path, capsys):
    data, out = photos(tmp_path / "p"), tmp_path / "codes.npz"
    with output_lock(out):  # another encode is writing codes.npz
        assert _encode(runs[0], data, out) == 2
        assert "is being written by process" in _error(capsys)
    assert _encode(runs[0], data, out) == 0
    assert not (tmp_path / ".codes.npz.lock").exists() and not (tmp_path / "codes.parts").exists()
    with pytest.raises(RunLocked):
        with output_lock(out):
            output_lock(out).acquire()


def test_a_failed_checkpoint_write_leaves_no_temporary_file(tmp_path, capsys, monkeypatch, fast):
    out = tmp_path / "run"
    real = os.replace

    def full(src, dst):
        if Path(dst).name == "asymmetric.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", full)
        assert main([*TRAIN, "--out", str(out)]) == 2
    assert "asymmetric.pt: no space left on its device" in _error(capsys)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    stale = out / "checkpoints" / ".asymmetric.pt.4000000.abcdefgh.tmp"  # of a process killed outright
    stale.write_bytes(b"half")
    assert main([*TRAIN, "--resume", "--out", str(out)]) == 0
    assert not stale.exists() and not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------- silent wrong answers
def _unreadable(monkeypatch, folder):
    real = os.scandir

    def scandir(path="."):
        if Path(os.fsdecode(path)) == Path(folder):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)


def test_an_unreadable_subfolder_stops_encode_and_verify(runs, tmp_path, capsys, monkeypatch, never_encode):
    data = photos(tmp_path / "p")
    _unreadable(monkeypatch, data / "b" / "c")  # the tests run as root: chmod would not stop a read
    assert _encode(runs[0], data, tmp_path / "c.npz") == 2
    line = _error(capsys)
    assert "cannot read the folder" in line and str(data / "b" / "c") in line
    assert main(["verify", "--data", str(data), "--quiet"]) == 2
    assert "cannot read the folder" in _error(capsys)


def test_verify_of_a_folder_without_images_is_an_error(tmp_path, capsys):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert main(["verify", "--data", str(tmp_path / "empty"), "--quiet"]) == 2
    assert "no image files" in _error(capsys)


def test_a_run_of_several_lengths_encodes_one_length(runs, tmp_path, capsys):
    data = photos(tmp_path / "p")
    assert _encode(runs[1], data, tmp_path / "all.npz") == 2
    assert "learned codes of 4, 8 bits: choose one with --bits" in _error(capsys)
    assert _encode(runs[1], data, tmp_path / "b5.npz", "--bits", "5") == 2
    assert "not 5" in _error(capsys)
    for bits, cols in ((8, slice(4, 12)), (4, slice(0, 4))):
        assert _encode(runs[1], data, tmp_path / f"b{bits}.npz", "--bits", str(bits)) == 0
        words, stored, listing = ef.read_encoded(tmp_path / f"b{bits}.npz")
        assert stored == bits == listing["bits"] and len(words) == 7
        from fgh_tutorial.data.real import ImageList
        from fgh_tutorial.data import default_transform
        from fgh_tutorial.models.encode import encode
        from fgh_tutorial.runs.folder import load_run

        _, model, prof = load_run(runs[1])
        files = [data / p for p in listing["paths"]]
        whole = encode(model, ImageList([(f, 0) for f in files], [""], default_transform(prof.image_size)), 4)
        assert whole.shape[1] == 12 and np.array_equal(words, pack_codes(np.ascontiguousarray(whole[:, cols])))


def test_a_code_length_given_twice_is_refused(tmp_path, capsys, fast):
    with pytest.raises(SystemExit):
        main([*TRAIN, "--bits", "12,12", "--out", str(tmp_path / "r")])
    assert "each code length once" in capsys.readouterr().err
    with pytest.raises(BadOption, match="12 is given twice"):
        train_run(tmp_path / "r", bits="12,24,12", progress=False)
    assert not (tmp_path / "r").exists()


def test_a_feature_cache_that_does_not_fit_is_computed_again(tmp_path):
    from fgh_tutorial.models.backbones import build_backbone
    from fgh_tutorial.training import frozen

    torch.manual_seed(0)
    net = build_backbone("minires")
    splits = {"train": (torch.randn(6, 3, 16, 16), torch.arange(6) % 2)}
    cache = tmp_path / "features.npz"
    good = frozen.cached_features(net, splits, cache, progress=False)
    key = frozen.fingerprint(net, splits)
    np.savez(cache, fingerprint=np.array(key), **{"train.features": np.zeros((6, 5), np.float32),
                                                  "train.labels": np.arange(6) % 2})  # right print, wrong width
    with pytest.warns(UserWarning, match="cannot be used .*needs \\(6, 128\\)"):
        again = frozen.cached_features(net, splits, cache, progress=False)
    assert torch.equal(again["train"][0], good["train"][0])
    cache.write_bytes(cache.read_bytes()[:100])  # truncated: computed again, not a crash
    with pytest.warns(UserWarning, match="features.npz cannot be used"):
        assert frozen.cached_features(net, splits, cache, progress=False)["train"][0].shape == (6, 128)
    assert frozen.cache_is_current(net, splits, cache)


def _folder_run(root, out, *more):
    return main(["train", "--dataset", "folder", "--data", str(root), "--bits", "8", "--iterations", "1",
                 "--samples", "16", "--image-size", "16", "--out", str(out), *more])


def _classes(root, per_class=6, classes=2, seed=0):
    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(root / f"class{c}" / f"{i}.png")
    return root


def test_the_bundle_pairs_codes_with_the_images_they_belong_to(tmp_path, capsys, fast):
    from fgh_tutorial.app.bundle import bundle_from_runs
    from fgh_tutorial.data.fingerprint import split_files

    data = _classes(tmp_path / "data")
    (data / "class0" / "1.png").write_bytes(b"\x89PNG broken")
    assert _folder_run(data, tmp_path / "skip", "--on-bad-image", "skip") == 0
    bundle = bundle_from_runs(tmp_path / "skip")
    files = split_files(bundle._splits["train"][0])
    assert data / "class0" / "1.png" not in files and len(files) == len(bundle.systems["skip"].codes)
    (data / "class1" / "0.png").rename(data / "class0" / "7.png")  # the folder changed since training
    with pytest.raises(BadData, match="the data changed since the run"):
        bundle_from_runs(tmp_path / "skip")


def test_packing_codes_of_no_bits_is_refused():
    with pytest.raises(BadOption, match="no bits"):
        pack_codes(np.ones((3, 0), np.int8))


def test_every_rename_is_followed_by_a_sync_of_its_folder(tmp_path, monkeypatch):
    from fgh_tutorial import files

    synced, real = [], os.fsync

    def fsync(fd):
        synced.append(os.path.isdir(f"/proc/self/fd/{fd}") and os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    files.atomic_write(tmp_path / "sub" / "a.bin", b"x")
    assert synced[-1] == str(tmp_path / "sub")  # the file first, then its folder
    assert (tmp_path / "sub" / "a.bin").read_bytes() == b"x" and os.listdir(tmp_path / "sub") == ["a.bin"]


def test_a_written_file_has_the_mode_a_plain_write_gives(tmp_path):
    from fgh_tutorial import files

    old = os.umask(0o027)
    try:
        new = files.atomic_write(tmp_path / "new.json", "{}")
        assert new.stat().st_mode & 0o777 == 0o640  # the umask's, not mkstemp's private 0o600
        assert os.umask(0o027) == 0o027  # reading the umask left it as it was
        kept = tmp_path / "kept.json"
        kept.write_text("{}")
        kept.chmod(0o640)
        files.atomic_write(kept, "[]")
        assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == "[]"
    finally:
        os.umask(old)


def test_a_full_disk_is_an_environment_error_not_a_bug(tmp_path, capsys, monkeypatch, fast):
    from fgh_tutorial.cli.reporting import user_message

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    assert main([*TRAIN, "--out", str(tmp_path / "run")]) == 2
    assert "config.json: no space left on its device" in _error(capsys)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    torch_full = RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 1024 vs 960")
    assert "no space left" in user_message(torch_full)
    assert "out of memory" in user_message(MemoryError())
    import urllib.error

    assert "no network" in user_message(urllib.error.URLError("Name or service not known"))
    assert isinstance(EnvironmentFailure("x"), ValueError) and isinstance(BadFile("x"), ValueError)


def test_json_written_by_the_library_reads_back(tmp_path):
    from fgh_tutorial.files import read_json, write_json

    write_json(tmp_path / "a.json", {"x": [1, 2]})
    assert read_json(tmp_path / "a.json") == {"x": [1, 2]}
    (tmp_path / "b.json").write_text("{broken")
    with pytest.raises(BadFile, match="b.json is damaged"):
        read_json(tmp_path / "b.json")
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": [1, 2]}
