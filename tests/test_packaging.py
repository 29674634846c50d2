"""environment.yml lists the same packages, with the same ranges, as pyproject.toml."""
import re
import tomllib
from pathlib import Path

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


def test_wheel_ships_the_explorer_bundle_and_every_subpackage(tmp_path):
    """A non-editable install gets the explorer bundle (package data) and every layer."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("fgh_tutorial-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fgh_tutorial/app/explorer_bundle.pt" in names
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "fgh_tutorial").rglob("__init__.py")}
    assert {f"{p}/__init__.py" for p in packages} <= names
    bundle = zipfile.ZipFile(wheel).getinfo("fgh_tutorial/app/explorer_bundle.pt")
    assert bundle.file_size == (ROOT / "fgh_tutorial" / "app" / "explorer_bundle.pt").stat().st_size
