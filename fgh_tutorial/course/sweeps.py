"""Multi-seed sweeps: run an experiment for every (setting, seed), keep every finished run in a
JSON file, and summarise each setting by its mean and its min-max range over the seeds.

The file is rewritten atomically after every run, so an interrupted sweep resumes where it
stopped (``run_sweep(..., budget_s=170)`` stops starting new runs after that many seconds: a long
sweep runs as a series of short calls). A difference between two settings is read as a result
only when it exceeds the spread: ``separated(a, b)`` says whether their seed ranges do not overlap.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path


def load_sweep(path) -> dict:
    """The stored sweep at ``path``: {"name", "meta", "runs": [{"setting", "seed", "result", "seconds"}]}."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sweep results at {path}: run benchmarks/sweeps.py to produce them")
    return json.loads(path.read_text())


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _key(setting: dict, seed: int) -> str:
    return json.dumps([setting, seed], sort_keys=True)


def run_sweep(path, experiment, settings, seeds=(0, 1, 2), meta: dict | None = None,
              budget_s: float | None = None, log=print) -> dict:
    """Run ``experiment(setting, seed) -> dict of numbers`` for every setting and seed not yet in
    the file at ``path``; returns the sweep. ``budget_s``: start no new run after that many seconds (one run always starts)."""
    path = Path(path)
    data = load_sweep(path) if path.exists() else {"name": path.stem, "meta": {}, "runs": []}
    data["meta"] = {**data["meta"], **(meta or {}), "machine": f"{platform.machine()}, {os.cpu_count()} CPUs"}
    done = {_key(r["setting"], r["seed"]) for r in data["runs"]}
    start, ran = time.perf_counter(), 0
    for setting in settings:
        for seed in seeds:
            if _key(setting, seed) in done:
                continue
            if budget_s is not None and ran and time.perf_counter() - start > budget_s:
                log(f"{path.stem}: time budget spent; run again to continue")
                return data
            t = time.perf_counter()
            result = experiment(dict(setting), seed)
            seconds = round(time.perf_counter() - t, 1)
            data["runs"].append({"setting": setting, "seed": seed, "result": result, "seconds": seconds})
            _write(path, data)
            ran += 1
            log(f"{path.stem}: {setting} seed {seed}: {seconds} s")
    return data


def value(result: dict, metric: str):
    """``metric`` as a dotted path into a result: "map", "map.48", "probe.bird"."""
    for part in metric.split("."):
        result = result[part]
    return result


def summary(sweep: dict, metric: str, where: dict | None = None) -> list[dict]:
    """One row per setting (in the order first run): mean, min, max and the values over seeds of
    ``metric``; ``where`` keeps the settings whose fields have these values."""
    rows = {}
    for run in sweep["runs"]:
        s = run["setting"]
        if where and any(s.get(k) != v for k, v in where.items()):
            continue
        rows.setdefault(json.dumps(s, sort_keys=True), (s, []))[1].append(value(run["result"], metric))
    out = []
    for setting, values in rows.values():
        out.append({"setting": setting, "n": len(values), "values": values, "mean": sum(values) / len(values),
                    "min": min(values), "max": max(values)})
    return out


def separated(a: dict, b: dict) -> bool:
    """True when the seed ranges of two summary rows do not overlap (the difference exceeds the spread)."""
    return a["min"] > b["max"] or b["min"] > a["max"]


def compare(a: dict, b: dict, digits: int = 3) -> str:
    """'0.312 [0.305, 0.318] vs 0.281 [0.270, 0.290]: higher, beyond the spread' (or 'within the spread')."""
    fmt = lambda r: f"{r['mean']:.{digits}f} [{r['min']:.{digits}f}, {r['max']:.{digits}f}]"
    if not separated(a, b):
        verdict = "within the spread"
    else:
        verdict = ("higher" if a["mean"] > b["mean"] else "lower") + ", beyond the spread"
    return f"{fmt(a)} vs {fmt(b)}: {verdict}"
