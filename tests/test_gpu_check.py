"""``make gpu-check`` (benchmarks/gpu_check.py) in its CPU form, as CI runs it: it passes, says that
there was no CUDA device and reports every stage, figure and check. The check runs once for the
module (about 1.5 minutes on 2 cores); the other tests run single stages or the install step."""
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(SCRIPT.parent))

import gpu_check  # noqa: E402


def _check(out, *args):
    return subprocess.run([sys.executable, str(SCRIPT), "--cpu", "--out", str(out), "--wheels", str(out / "none"), *args],
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def cpu_form(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    proc = _check(out)
    return proc, json.loads((out / "report.json").read_text()), out


def test_the_cpu_form_passes_and_says_there_is_no_cuda(cpu_form):
    proc, report, out = cpu_form
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    assert report["exit_code"] == 0 and report["cuda"] is False and report["mode"] == "CPU form"
    assert report["device"].startswith("no CUDA device") and "no GPU figure was measured" in report["note"]
    text = (out / "report.txt").read_text()
    assert "no CUDA device" in text and "result: PASS" in text and text.strip() in proc.stdout
    assert "===== stage e2e" in (out / "stages.log").read_text()


def test_the_report_holds_every_stage_check_and_figure(cpu_form):
    _, report, _ = cpu_form
    stages = {s["name"]: s for s in report["stages"]}
    assert list(stages) == ["env", "install", "compile", "interpreter", "cpu_kernels", "e2e"]
    assert all(s["status"] == "passed" for s in stages.values())
    assert report["checks_failed"] == 0 and report["checks_passed"] == sum(len(s["checks"]) for s in stages.values())
    assert report["failed_stages"] == [] and report["goals_missed"] == []
    names = [c["name"] for c in stages["interpreter"]["checks"]]
    for bits in (12, 24, 32, 48, 64, 128):
        assert {f"top-k equal, {bits} bits", f"full ranking equal, {bits} bits",
                f"tie-aware APs equal to the last bit, {bits} bits"} <= set(names)
    assert sum("popc.b64" in c["name"] for c in stages["compile"]["checks"]) == 5  # every kernel variant, sm_90
    assert {"train exits 0", "evaluate exits 0", "query exits 0", "encode exits 0"} <= {c["name"] for c in stages["e2e"]["checks"]}
    for s in stages.values():
        assert all(set(f) == {"name", "value", "unit", "reference", "ratio", "goal", "met"} for f in s["figures"])
        assert all(set(c) == {"name", "ok", "detail"} for c in s["checks"])
    assert report["environment"]["torch"] and report["install"]["missing_after"] == []


def test_a_stage_that_cannot_run_fails_the_check_and_is_reported(tmp_path):
    start = time.perf_counter()
    proc = _check(tmp_path, "--stages", "compile,interpreter", "--budget", "1")
    report = json.loads((tmp_path / "report.json").read_text())
    assert proc.returncode == 1 and report["exit_code"] == 1
    assert [(s["name"], s["status"]) for s in report["stages"][2:]] == [("compile", "not run"), ("interpreter", "not run")]
    assert report["failed_stages"] == ["compile", "interpreter"] and "result: FAIL" in proc.stdout
    assert time.perf_counter() - start < 120
    assert "not stages of the CPU form" in _check(tmp_path, "--stages", "retrieval").stderr


def test_install_brings_missing_wheels_once(tmp_path, monkeypatch):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "fgh_probe-0.1-py3-none-any.whl", "w") as whl:  # the smallest valid wheel
        whl.writestr("fgh_probe/__init__.py", "VALUE = 42\n")
        whl.writestr("fgh_probe-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fgh-probe\nVersion: 0.1\n")
        whl.writestr("fgh_probe-0.1.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr("fgh_probe-0.1.dist-info/RECORD", "")
    monkeypatch.setattr(gpu_check, "NEEDED", gpu_check.NEEDED + [("fgh_probe", "fgh-probe", "runtime")])
    rep, site = gpu_check.install(tmp_path, wheels, time.time() + 300, tests=False)
    assert rep["status"] == "passed" and rep["wheels_installed"] == ["fgh_probe-0.1-py3-none-any.whl"], rep
    assert (site / "fgh_probe" / "__init__.py").exists() and rep["missing_after"] == []
    assert rep["package"].startswith("already importable")
    again, _ = gpu_check.install(tmp_path, wheels, time.time() + 300, tests=False)
    assert "wheels_installed" not in again and again["status"] == "passed"  # importable now: skipped
