"""``python -m fgh_tutorial explore --run RUN [--run RUN2 ...]``: the retrieval explorer over one's
own runs, served by Voilà on loopback as ``make explore`` serves the shipped bundle.

Each run is opened first (manifest and files checked, network loaded, the data of the first run
shared by the others); a damaged, unfinished or unfitting run is named and left out. The usable
runs reach ``app/explorer.ipynb`` through the environment variable ``FGH_RUNS`` (paths joined by
``os.pathsep``), where ``bundle_from_runs`` opens them.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

RUNS_VARIABLE = "FGH_RUNS"
NOTEBOOK = Path(__file__).resolve().parents[2] / "app" / "explorer.ipynb"


def usable_runs(runs) -> tuple[list[Path], list[tuple[str, str]]]:
    """(the runs the explorer can open, [(run, why not)] for the others)."""
    from ..runs.folder import load_run, run_database

    good, bad, first, names = [], [], None, set()
    for run in runs:
        try:
            _, _, prof = load_run(run)
            run_database(run)
            key = (prof.dataset, prof.image_size, prof.data_root)
            if first is not None and key != first:
                raise ValueError(f"trained on {key[0]} at {key[1]} px ({key[2]}), the first run on {first[0]} at "
                                 f"{first[1]} px ({first[2]})")
            if Path(run).name in names:
                raise ValueError(f"another run is also named {Path(run).name!r}: the explorer names systems by folder")
            if prof.dataset != "synthetic" and not Path(prof.data_root or "").is_dir():
                raise FileNotFoundError(f"its data folder {prof.data_root} is missing")
        except Exception as err:  # noqa: BLE001 - any run that cannot be opened is named and left out
            why = " ".join(str(err).split()) or type(err).__name__
            bad.append((str(run), why if isinstance(err, (ValueError, OSError)) else f"{type(err).__name__}: {why}"))
            continue
        first = first or key
        names.add(Path(run).name)
        good.append(Path(run).resolve())
    return good, bad


def voila_command(port: int, browser: bool) -> list[str]:
    if importlib.util.find_spec("voila") is None:
        raise ImportError("the explorer needs Voila: pip install 'fgh_tutorial[app]'")
    if not NOTEBOOK.is_file():
        raise FileNotFoundError(f"the explorer notebook {NOTEBOOK} is missing: explore from a checkout of the project")
    return [sys.executable, "-m", "voila", str(NOTEBOOK), "--Voila.ip=127.0.0.1", f"--port={port}",
            *([] if browser else ["--no-browser"])]


def serve(runs, port: int = 8866, browser: bool = True) -> int:
    """Check ``runs``, then become Voilà serving the explorer over the usable ones (this process is
    replaced, so Ctrl-C and signals reach the server itself and nothing is left running)."""
    good, bad = usable_runs(runs)
    if not good:
        raise ValueError("no run can be explored: " + "; ".join(f"{run}: {why}" for run, why in bad))
    for run, why in bad:
        print(f"warning: {run} is left out: {why}", file=sys.stderr)
    command = voila_command(port, browser)
    env = {**os.environ, RUNS_VARIABLE: os.pathsep.join(map(str, good))}
    print(f"exploring {len(good)} run(s) on http://127.0.0.1:{port}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os.execve(command[0], command, env)
    return 0  # not reached (a stand-in for execve in tests returns)


__all__ = ["NOTEBOOK", "RUNS_VARIABLE", "serve", "usable_runs", "voila_command"]
