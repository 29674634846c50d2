"""Packaging: environment.yml lists the same packages as pyproject.toml, the wheel ships every layer,
the library and its commands run without the course extra, and the code passes ruff."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _norm(req):
    name = re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0]
    return name.lower().replace("_", "-"), req[len(name):].replace(" ", "")


def test_environment_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = dict(_norm(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted.update(_norm(r) for r in extra)
    listed = {}
    for line in (ROOT / "environment.yml").read_text().splitlines():
        m = re.match(r"\s{6}- ([A-Za-z0-9_.\-]+.*)$", line)  # the pip: section
        if m and not m.group(1).startswith(("-e", "python", "pip")):
            name, spec = _norm(m.group(1))
            listed[name] = spec
    assert listed == wanted


def test_ci_calls_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make test" in (ROOT / ".ci" / "run").read_text()
    assert "torch==" in (ROOT / "constraints.txt").read_text()


@pytest.mark.slow
def test_wheel_ships_the_explorer_bundle_and_every_subpackage(tmp_path):
    """A non-editable install gets the explorer bundle (package data) and every layer."""
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("fgh_tutorial-*.whl"))
    version = re.search(r'^__version__ = "(.+)"$', (ROOT / "fgh_tutorial" / "__init__.py").read_text(), re.M).group(1)
    assert wheel.name.startswith(f"fgh_tutorial-{version}-")  # pyproject reads the one version there
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fgh_tutorial/app/explorer_bundle.pt" in names
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "fgh_tutorial").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names
    bundle = zipfile.ZipFile(wheel).getinfo("fgh_tutorial/app/explorer_bundle.pt")
    assert bundle.file_size == (ROOT / "fgh_tutorial" / "app" / "explorer_bundle.pt").stat().st_size


# ---------------------------------------------------------------- the core without the course stack
COURSE_STACK = ("matplotlib", "ipywidgets", "ipykernel", "IPython", "nbclient", "nbformat", "nbconvert", "jupyterlab",
                "jupyter_server", "voila")
BLOCK = f"""
import sys
BLOCKED = {COURSE_STACK!r}

class NotInstalled:  # as if the course extra were not installed
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NotInstalled())
"""


def _without_course_stack(code, *args, cwd=ROOT):
    return subprocess.run([sys.executable, "-c", BLOCK + code, *args], capture_output=True, text=True, timeout=600,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_the_course_stack_is_an_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_norm(r)[0] for r in project["dependencies"]}
    course = {_norm(r)[0] for r in project["optional-dependencies"]["course"]}
    stack = {"matplotlib", "ipywidgets", "ipykernel", "nbclient", "nbformat", "nbconvert", "jupyterlab", "voila"}
    assert stack <= course and not stack & core
    extras = re.search(r"pip install .*-e '\.\[([\w,-]+)\]'", (ROOT / "Makefile").read_text()).group(1).split(",")
    assert set(extras) == set(project["optional-dependencies"])  # make setup installs every extra


def test_the_blocker_blocks():
    run = _without_course_stack("import matplotlib.pyplot")
    assert run.returncode == 1 and "No module named 'matplotlib'" in run.stderr


@pytest.mark.slow
def test_the_core_and_its_commands_run_without_the_course_stack(tmp_path):
    """Every layer below app/ and course/ imports, ``python -m fgh_tutorial --help`` answers, verify
    and a tiny run of train / evaluate / query on a folder work, and the course command says in one
    line which extra it needs."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for k in range(3):
        (tmp_path / "photos" / f"class{k}").mkdir(parents=True)
        for i in range(4):
            pixels = np.clip(rng.normal(60 + 60 * k, 30, (24, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / "photos" / f"class{k}" / f"{i}.png")
    notebook = str(ROOT / "notebooks" / "00_fine_grained_data.ipynb")
    run = _without_course_stack(f"""
import runpy
import fgh_tutorial, fgh_tutorial.retrieval, fgh_tutorial.data, fgh_tutorial.models, fgh_tutorial.attention
import fgh_tutorial.training, fgh_tutorial.systems, fgh_tutorial.runs.train, fgh_tutorial.runs.encoding, fgh_tutorial.cli
from fgh_tutorial.cli import main

sys.argv = ["fgh_tutorial", "--help"]
try:
    runpy.run_module("fgh_tutorial", run_name="__main__")
except SystemExit as end:
    assert end.code in (0, None)
assert main(["verify", "--data", "photos", "--quiet"]) == 0
assert main(["train", "--dataset", "folder", "--data", "photos", "--bits", "8", "--iterations", "1", "--samples", "12",
             "--out", "run"]) == 0
assert main(["evaluate", "--run", "run"]) == 0
assert main(["query", "--run", "run", "--k", "2", "photos/class1/0.png"]) == 0
assert main(["course", {notebook!r}, "--out", "course"]) == 2
assert not [m for m in sys.modules if m.partition(".")[0] in BLOCKED]
""", cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "usage: python -m fgh_tutorial" in run.stdout and "{course,train,evaluate,query" in run.stdout
    assert "all 12 image files under photos decode" in run.stdout
    assert '"map"' in run.stdout and "photos/class1/0.png" in run.stdout
    assert run.stderr.strip().splitlines()[-1] == ("error: running the notebooks needs the course extra (nbformat is "
                                                   "missing): pip install 'fgh_tutorial[course]'")


def test_ruff_passes():
    """The lint rules of pyproject.toml ([tool.ruff]); ruff comes with the dev extra."""
    import importlib.util

    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(ROOT)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
