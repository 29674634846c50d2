"""Running the course headlessly and collecting each notebook's key numbers.

A notebook calls ``record("01", map_48bit=0.34, ...)``; when ``$FGH_RECORD_DIR`` is set (as
``run_course`` sets it) the values are written to ``<dir>/<notebook>.json``, else nothing
happens. ``run_course`` executes the notebooks with nbclient, writes the executed notebooks
and their HTML to an output folder and returns the records. While a notebook runs, one status
line shows its progress (cells done of cells, elapsed time); the kernel's own log messages
(e.g. its transport warning) are not shown; at the end every notebook's runtime is printed
against its budget (``BUDGET_S``, 2 minutes on a 2-core CPU).
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BUDGET_S = 120  # every notebook of the cpu profile, on a 2-core CPU


def record(notebook: str, **values) -> dict:
    """Store key numbers of a notebook for the course summary (no-op outside ``run_course``)."""
    folder = os.environ.get("FGH_RECORD_DIR")
    if folder:
        path = Path(folder) / f"{notebook}.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**old, **values}, indent=1, default=float))
    return values


class _Progress:
    """'01_hashing_basics  cell 12/27  41 s' on one line, rewritten as cells finish."""

    def __init__(self, name, total, stream):
        self.name, self.total, self.stream, self.done = name, total, stream, 0
        self.start = time.perf_counter()

    def cell_done(self, cell, cell_index, **_):
        self.done += cell.cell_type == "code"
        self.show()

    def show(self, end=""):
        line = f"{self.name}  cell {self.done}/{self.total}  {time.perf_counter() - self.start:.0f} s"
        self.stream.write(("\r" + line.ljust(60) + end) if self.stream.isatty() else (line + "\n" if end else ""))
        self.stream.flush()


def _widget_text(model_id: str, states: dict) -> str | None:
    """The final state of a tqdm progress widget (an HBox of description, bar, counts) as one line
    without the bar: "adsh iterations: 4/4 [00:09<00:00, 2.43s/it]" (a bar that did not finish adds
    "stopped at 50%"). None for any other widget."""
    state = states.get(model_id, {})
    children = [states.get(c.removeprefix("IPY_MODEL_"), {}) for c in state.get("children", [])]
    kinds = [c.get("_model_name") for c in children]
    if state.get("_model_name") != "HBoxModel" or len(kinds) != 3 or kinds[1] not in ("FloatProgressModel",
                                                                                      "IntProgressModel"):
        return None
    left, _, right = (html.unescape(str(c.get("value", ""))).replace("\u2007", " ") for c in children)  # tqdm's padding
    done = float(children[1].get("value", 0)) >= float(children[1].get("max", 1))
    description = re.sub(r"\s*\d+%$", "", left.strip())  # "adsh iterations: 100%" -> "adsh iterations:"
    line = f"{description} {right.strip()}".strip()
    return line if done else f"{line} (stopped at {left.strip().rsplit(' ', 1)[-1]})"


def settle_progress_bars(nb, states: dict) -> int:
    """Replace every progress-bar widget in ``nb``'s outputs by its final line as plain text.

    A stored widget output carries only its first text ("0%|  | 0/4") when the widget state is not
    saved, so GitHub, nbviewer and the HTML export would show a bar frozen at 0%; the final line
    ("adsh iterations: 4/4 [00:41<00:00]", without a bar) is what a static reader should see.
    Other widgets are left alone. Returns the number of bars replaced."""
    replaced = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get("application/vnd.jupyter.widget-view+json")
            text = _widget_text(view.get("model_id", ""), states) if view else None
            if text is not None:
                out["data"] = {"text/plain": text.strip()}
                replaced += 1
    return replaced


def notebook_tools():
    """nbformat, nbclient's NotebookClient and nbconvert's HTMLExporter, or a one-line error that
    names the extra installing them (the library and its other commands run without them)."""
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbconvert import HTMLExporter
    except ImportError as err:
        raise ValueError(f"running the notebooks needs the course extra ({err.name or err} is missing): "
                         "pip install 'fgh_tutorial[course]'") from err
    return nbformat, NotebookClient, HTMLExporter


def execute_notebook(path, out_dir, timeout: int = 1200, html: bool = True, progress=None) -> float:
    """Execute one notebook in its own folder; write ``<name>.ipynb`` (and ``<name>.html``) to
    ``out_dir``. Returns the wall time in seconds. ``progress``: a stream for the status line
    (e.g. ``sys.stdout``); None prints nothing."""
    nbformat, NotebookClient, HTMLExporter = notebook_tools()

    path, out_dir = Path(path), Path(out_dir)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    # Widget state is tracked while running (nbclient routes Output-widget messages through it)
    # but not saved: committed notebooks carry no widget state.
    bar = _Progress(path.stem, sum(c.cell_type == "code" for c in nb.cells), progress) if progress else None
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}},
                            store_widget_state=True, record_timing=False,
                            on_cell_executed=bar.cell_done if bar else None)
    client.execute(stderr=subprocess.DEVNULL)  # the kernel process's log, not the cells' output
    settle_progress_bars(nb, client.widget_state)
    if bar:
        bar.show(end="\n")
    nb.metadata.pop("widgets", None)
    seconds = time.perf_counter() - start
    nbformat.write(nb, out_dir / path.name)
    if html:
        page, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / path.with_suffix(".html").name).write_text(page, encoding="utf-8")
    return seconds


def run_course(notebooks, out_dir="build/course") -> dict:
    """Execute ``notebooks`` in order; returns {notebook stem: {seconds, records...}}."""
    notebook_tools()  # before any work: the course extra is there
    out_dir = Path(out_dir)
    records = out_dir / "records"
    records.mkdir(parents=True, exist_ok=True)
    for old in records.glob("*.json"):
        old.unlink()
    os.environ["FGH_RECORD_DIR"] = str(records.resolve())
    summary = {}
    for nb in notebooks:
        seconds = execute_notebook(nb, out_dir, progress=sys.stdout)
        summary[Path(nb).stem] = {"seconds": round(seconds, 1)}
    for path in sorted(records.glob("*.json")):
        key = next((k for k in summary if k.startswith(path.stem)), path.stem)
        summary.setdefault(key, {}).update(json.loads(path.read_text()))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def format_budget(summary: dict, budget_s: float = BUDGET_S) -> str:
    """Each notebook's runtime against its budget, one line each, and the total."""
    lines = [f"runtime per notebook (budget {budget_s:.0f} s each on a 2-core CPU):"]
    for name, values in summary.items():
        t = values.get("seconds")
        if t is not None:
            lines.append(f"  {name:<34} {t:6.0f} s  {'within budget' if t <= budget_s else 'OVER budget'}")
    total = sum(v.get("seconds", 0) for v in summary.values())
    lines.append(f"  {'total':<34} {total:6.0f} s")
    return "\n".join(lines)


def format_summary(summary: dict) -> str:
    lines = []
    for name, values in summary.items():
        lines.append(f"{name}  ({values.get('seconds', '?')} s)")
        for k, v in values.items():
            if k != "seconds":
                lines.append(f"    {k:<34} {v:.4g}" if isinstance(v, float) else f"    {k:<34} {v}")
    return "\n".join(lines)


RUNTIME = re.compile(r"\*\*Runtime:\*\* (RUNTIME_\d+|[\d.]+ (s|min)) on a 2-core CPU")


def format_runtime(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def update_notebook_runtime(path, seconds: float) -> bool:
    """Write the measured runtime into the notebook's opening cell ("**Runtime:** 85 s on a 2-core CPU")."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    text = RUNTIME.sub(f"**Runtime:** {format_runtime(seconds)} on a 2-core CPU", first.source, count=1)
    if text == first.source:
        return False
    first.source = text
    nbformat.write(nb, path)
    return True


def update_readme_runtimes(readme, runtimes: dict) -> int:
    """Write each notebook's measured runtime (``{stem: seconds}``) into the last column of the
    README's notebook table: the row whose first cell links ``notebooks/<stem>.ipynb``. The numbers
    come from the run that ``make notebooks`` just did, never typed. Returns the rows changed."""
    path = Path(readme)
    lines, changed = path.read_text(encoding="utf-8").split("\n"), 0
    for i, line in enumerate(lines):
        link = re.match(r"\| \[[^]]*\]\(notebooks/([^)]+)\.ipynb\) \|", line)
        if link and link.group(1) in runtimes:
            cells = line.rstrip().rstrip("|").split(" | ")
            seconds = runtimes[link.group(1)]
            cells[-1] = format_runtime(seconds)
            lines[i], changed = " | ".join(cells) + " |", changed + 1
    path.write_text("\n".join(lines), encoding="utf-8")
    return changed


def refresh_notebooks(pattern: str = "notebooks/[0-9][0-9]_*.ipynb", readme="README.md") -> dict:
    """``make notebooks``: execute the matching notebooks in place, export their figures and write
    their runtimes into each notebook's opening cell and into ``readme``. Returns {stem: seconds}."""
    import glob

    times = {}
    for path in sorted(glob.glob(pattern)):
        times[Path(path).stem] = execute_notebook(path, Path(path).parent, html=False, progress=sys.stdout)
        update_notebook_runtime(path, times[Path(path).stem])
        update_readme_runtimes(readme, {Path(path).stem: times[Path(path).stem]})
        print(f"{path}: {times[Path(path).stem]:.0f} s, figures {[str(p) for p in export_figures(path)]}")
    return times


def export_figures(notebook, assets_dir="assets") -> list:
    """Write the PNG output of every code cell marked ``# FIGURE <name>`` to
    ``assets_dir/<name>.png`` (the README's figures come from the executed notebooks)."""
    import base64

    import nbformat

    written = []
    nb = nbformat.read(Path(notebook), as_version=4)
    for cell in nb.cells:
        first = cell.source.splitlines()[0] if cell.cell_type == "code" and cell.source else ""
        if not first.startswith("# FIGURE "):
            continue
        png = next((o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})), None)
        if png is None:
            raise ValueError(f"{notebook}: the cell marked {first!r} has no PNG output; execute the notebook first")
        path = Path(assets_dir) / f"{first.split()[2]}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(png))
        written.append(path)
    return written
