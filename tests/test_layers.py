"""The layers of ``fgh_tutorial/__init__.py``'s docstring are the package's: every sub-package and
module is listed there, and every import (lazy ones inside functions too) points to its own line
or a line above it."""
import ast
import re
from pathlib import Path

import fgh_tutorial

PACKAGE = Path(fgh_tutorial.__file__).parent


def documented_layers() -> list:
    """The names on each line of the layer list: ``["retrieval"], ["data"], ...``."""
    layers = []
    for line in fgh_tutorial.__doc__.splitlines():
        m = re.match(r"    (\S.*?)(\s{2,}|$)", line)  # a name column: 4 spaces in, then names
        if m and all(re.fullmatch(r"\w+(/|\.py)", name) for name in m.group(1).split()):
            layers.append([re.sub(r"(/|\.py)$", "", name) for name in m.group(1).split()])
    return layers


def unit(path: Path) -> str:
    """The top-level sub-package or module a file belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def imported_units(path: Path, package: Path = PACKAGE) -> set:
    """The top-level sub-packages and modules of fgh_tutorial that ``path`` imports."""
    own = path.relative_to(package).parent.parts  # the package the file is in, below fgh_tutorial
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:  # relative: from ..x import y
            assert node.level - 1 <= len(own), f"{path}: a relative import above the package"
            base = own[:len(own) - (node.level - 1)]
            target = list(base) + (node.module.split(".") if node.module else [])
            found.add(target[0] if target else node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fgh_tutorial":
            parts = node.module.split(".")
            found.add(parts[1] if len(parts) > 1 else node.names[0].name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "fgh_tutorial" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_the_documented_layers_are_the_package():
    listed = [name for layer in documented_layers() for name in layer]
    assert listed[:2] == ["errors", "files"] and listed[2:4] == ["retrieval", "data"] and listed[-1] == "cli", listed
    assert len(listed) == len(set(listed))
    present = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    present |= {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert set(listed) == present, f"listed only: {set(listed) - present}, not listed: {present - set(listed)}"


def test_imports_point_to_the_same_line_or_above():
    rank = {name: i for i, layer in enumerate(documented_layers()) for name in layer}
    rank["__main__"] = len(rank)  # python -m fgh_tutorial: above everything
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py":
            continue
        source = unit(path)
        for target in imported_units(path):
            if target not in rank:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {target}, which the layer list lacks")
            elif rank[target] > rank[source]:
                wrong.append(f"{path.relative_to(PACKAGE)} ({source}) imports {target}, a layer above it")
    assert not wrong, "\n".join(wrong)


def test_the_check_finds_an_upward_import(tmp_path):
    """The import walk sees lazy and relative imports (a check that cannot fail checks nothing)."""
    fake = tmp_path / "fgh_tutorial"
    (fake / "retrieval").mkdir(parents=True)
    module = fake / "retrieval" / "x.py"
    module.write_text("def f():\n    from ..training.cache import load_or_train\n    from . import codes\n"
                      "    import fgh_tutorial.app.viz\n")
    assert imported_units(module, fake) == {"training", "retrieval", "app"}


README = Path(__file__).resolve().parents[1] / "README.md"
NAME = re.compile(r"(?<![\w/.@-])([a-z_]\w*(?:/[a-z_]\w*)*(?:\.py|/))(?![\w-])")


def readme_map() -> dict:
    """The README's library map: {entry (``retrieval/``, ``errors.py``): the modules and packages its text names}."""
    block = README.read_text().split("\nfgh_tutorial/\n", 1)[1].split("```", 1)[0]
    entries, entry = {}, None
    for line in block.splitlines():
        head = re.match(r"  (\S+)\s{2,}(.*)", line)
        if head:
            entry, text = head.group(1), head.group(2)
            entries[entry] = []
        else:
            text = line
        entries[entry] += NAME.findall(text)
    return entries


def test_the_readme_map_names_the_tree():
    """Every module and package the map names exists (in its entry's package, or from the top), and
    the map names every package of the tree and every module at the top."""
    named, missing = set(), []
    for entry, names in readme_map().items():
        named.add(entry.rstrip("/"))
        base = entry.rstrip("/") if entry.endswith("/") else ""
        for name in names:
            found = [p for p in (Path(base) / name, Path(name)) if (PACKAGE / p).exists()]
            if not found:
                missing.append(f"{name} (in {entry})")
            named.update(str(p).rstrip("/") for p in found)
    assert not missing, f"the README map names what the package lacks: {missing}"
    packages = {str(p.parent.relative_to(PACKAGE)) for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE}
    modules = {p.name for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert not (packages | modules) - named, f"the README map lacks {sorted((packages | modules) - named)}"


def test_the_run_layer_modules_import_only_those_listed_before_them():
    """``runs/__init__.py`` lists its modules so that each imports only the ones before it."""
    import fgh_tutorial.runs

    listed = re.findall(r"^    (\w+)\.py ", fgh_tutorial.runs.__doc__, re.M)
    folder = PACKAGE / "runs"
    assert sorted(listed) == sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
    wrong = []
    for i, name in enumerate(listed):
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module not in listed[:i]:
                wrong.append(f"runs/{name}.py imports .{node.module}")
    assert not wrong, wrong
