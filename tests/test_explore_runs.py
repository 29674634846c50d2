"""``python -m fgh_tutorial explore``: which runs the explorer opens, and the errors when none can be
opened (the served app itself is driven in a browser by test_browser.py)."""
import json
import shutil

import pytest

from fgh_tutorial.app import serve
from fgh_tutorial.cli import main

from test_loader import fake_folder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished run (--train-top 1 of minires at 16 px) on a fake folder of three classes."""
    root = tmp_path_factory.mktemp("explore")
    data = fake_folder(root / "data")
    out = root / "runs" / "tiny"
    assert main(["train", "--dataset", "folder", "--data", str(data), "--bits", "8", "--backbone", "minires",
                 "--image-size", "16", "--train-top", "1", "--iterations", "1", "--samples", "8", "--batch-size", "4",
                 "--workers", "0", "--out", str(out)]) == 0
    return out


def test_damaged_and_unfinished_runs_are_named_and_left_out(tiny_run, tmp_path):
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.json").write_text(json.dumps({"method": "adsh"}))
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run, damaged)
    (damaged / "model.pt").write_bytes(b"not a model")
    twin = tmp_path / "twin" / "tiny"
    shutil.copytree(tiny_run, twin)
    good, bad = serve.usable_runs([tiny_run, unfinished, damaged, tmp_path / "missing", twin])
    assert good == [tiny_run.resolve()]
    why = dict(bad)
    assert "unfinished run" in why[str(unfinished)] and "was changed" in why[str(damaged)]
    assert "does not exist" in why[str(tmp_path / "missing")] and "also named 'tiny'" in why[str(twin)]


def test_explore_with_no_usable_run_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["explore", "--run", str(tmp_path / "missing"), "--run", str(tmp_path / "empty"), "--no-browser"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no run can be explored:") and len(err.splitlines()) == 1
    assert str(tmp_path / "missing") in err and str(tmp_path / "empty") in err


def test_explore_serves_the_notebook_on_loopback_with_the_runs(tiny_run, tmp_path, monkeypatch, capsys):
    seen = {}

    def execve(path, command, env):  # stands for the exec of Voila: records what it was given
        seen.update(command=command, runs=env[serve.RUNS_VARIABLE])

    monkeypatch.setattr(serve.os, "execve", execve)
    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name: object())
    assert main(["explore", "--run", str(tiny_run), "--run", str(tmp_path / "gone"), "--port", "8999",
                 "--no-browser"]) == 0
    err = capsys.readouterr().err
    assert f"{tmp_path / 'gone'} is left out" in err and "http://127.0.0.1:8999/" in err
    assert seen["runs"] == str(tiny_run.resolve()) and str(serve.NOTEBOOK) in seen["command"]
    assert "--Voila.ip=127.0.0.1" in seen["command"] and "--no-browser" in seen["command"]
    assert serve.NOTEBOOK.is_file() and serve.RUNS_VARIABLE in serve.NOTEBOOK.read_text()


def test_the_explorer_opens_a_run_of_top_stages(tiny_run):
    from fgh_tutorial.app.bundle import bundle_from_runs
    from fgh_tutorial.app.widgets import RetrievalExplorer

    explorer = RetrievalExplorer(bundle_from_runs(tiny_run))
    explorer.cam.value = True  # the CAM overlay of the run's own network
    assert explorer.last_state["system"] == "tiny" and len(explorer.last_hit.ids) == 10
    assert explorer.bundle.class_names() == ["class_0", "class_1", "class_2"]
