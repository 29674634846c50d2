"""The command line end to end on the embedded data, and its error messages."""
import json

import numpy as np
import pytest
from PIL import Image

from fgh_tutorial.cli import main
from fgh_tutorial.runs.folder import run_database
from fgh_tutorial.data import SynthBirds


@pytest.fixture(scope="module")
def run(tmp_path_factory, small_profile_module):
    small_profile_module(per_class=6, per_class_query=2, image_size=64)  # the end-to-end run takes seconds
    out = tmp_path_factory.mktemp("run") / "adsh12"
    code = main(["train", "--dataset", "synthetic", "--bits", "12", "--method", "adsh", "--out", str(out),
                 "--iterations", "1", "--samples", "256"])
    assert code == 0
    return out


@pytest.mark.slow
def test_train_writes_the_run(run):
    for name in ("config.json", "model.pt", "db_codes.npz", "metrics.json", "checkpoints/asymmetric.pt"):
        assert (run / name).exists(), name
    codes, labels = run_database(run)
    assert np.array_equal(labels, np.arange(6 * 54) % 54)
    assert codes.shape == (6 * 54, 12) and set(np.unique(codes)) <= {-1, 1}
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["map"] <= 1 and metrics["queries"] == 2 * 54


@pytest.mark.slow
def test_evaluate_and_query(run, capsys, tmp_path):
    assert main(["evaluate", "--run", str(run)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["database_codes"] == "V" and out["bits"] == 12
    assert main(["evaluate", "--run", str(run), "--encode-database"]) == 0
    assert json.loads(capsys.readouterr().out)["database_codes"] == "network"
    image, _ = SynthBirds("test", 1).render(0)
    Image.fromarray(image).save(tmp_path / "bird.png")
    assert main(["query", "--run", str(run), "--k", "3", str(tmp_path / "bird.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("bird.png") and len(lines) == 4 and "distance" in lines[1]


def test_clear_errors(tmp_path, capsys):
    assert main(["evaluate", "--run", str(tmp_path)]) == 2
    assert "manifest.json is missing" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "cub", "--out", str(tmp_path / "x")])
    assert "needs --data" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--bits", "0", "--out", str(tmp_path / "x")])
    assert main(["train", "--dataset", "cub", "--data", str(tmp_path / "none"), "--out", str(tmp_path / "y")]) == 2
    assert "CUB-200-2011: missing" in capsys.readouterr().err


@pytest.mark.slow
def test_explorer_over_a_trained_run(run):
    """The explorer opens over a run folder of ``train``: one system, the run's code length."""
    from fgh_tutorial.app.bundle import bundle_from_runs
    from fgh_tutorial.app.widgets import RetrievalExplorer

    bundle = bundle_from_runs(run)
    assert list(bundle.systems) == ["adsh12"] and bundle.lengths == (12,)
    assert len(bundle.query_labels) == 2 * 54 and len(bundle.db_labels) == 6 * 54
    metrics = json.loads((run / "metrics.json").read_text())
    assert bundle.systems["adsh12"].map == {12: metrics["map"]}
    ex = RetrievalExplorer(bundle, index=3)
    assert ex.last_state["bits"] == 12 and len(ex.last_hit.ids) == 10
    with pytest.raises(ValueError, match="at least one run"):
        bundle_from_runs()
    with pytest.raises(ValueError, match="two runs are named 'adsh12'"):
        bundle_from_runs(run, run)


def test_train_help_lists_the_registry(capsys):
    from fgh_tutorial.systems import SYSTEMS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name, system in SYSTEMS.items():
        assert name in out and system.description[:30] in out
