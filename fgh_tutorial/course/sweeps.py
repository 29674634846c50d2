"""Multi-seed sweeps: run an experiment for every (setting, seed), keep every finished run in a
JSON file, and summarise each setting by its mean and its min-max range over the seeds.

The file is rewritten atomically after every run, so an interrupted sweep resumes where it
stopped (``run_sweep(..., budget_s=170)`` stops starting new runs after that many seconds: a long
sweep runs as a series of short calls).

The course's yardstick (``paired``): two settings run with the same seeds are compared seed by
seed, d_s = x_s(A) - x_s(B), and a difference is stated only when the 95% t-interval of the mean
paired difference,  mean(d) +- t_{0.975, n-1} sd(d) / sqrt(n),  excludes zero; otherwise the
runs show no difference at that number of seeds. ``separated`` (seed ranges that do not overlap)
is the older, cruder rule for unpaired runs.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

from ..files import atomic_write


def load_sweep(path) -> dict:
    """The stored sweep at ``path``: {"name", "meta", "runs": [{"setting", "seed", "result", "seconds"}]}."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sweep results at {path}: run benchmarks/sweeps.py to produce them")
    return json.loads(path.read_text())


def write_sweep(path: Path, data: dict) -> None:
    """Write a sweep file atomically."""
    atomic_write(path, json.dumps(data, indent=1))  # a reader never sees half a file


def run_key(setting: dict, seed: int) -> str:
    """The identity of one run of a sweep: its setting and seed."""
    return json.dumps([setting, seed], sort_keys=True)


def _read(path: Path) -> dict:
    return load_sweep(path) if path.exists() else {"name": path.stem, "meta": {}, "runs": []}


def run_sweep(path, experiment, settings, seeds=(0, 1, 2), meta: dict | None = None,
              budget_s: float | None = None, log=print) -> dict:
    """Run ``experiment(setting, seed) -> dict of numbers`` for every setting and seed not yet in
    the file at ``path``; returns the sweep. ``budget_s``: start no new run after that many seconds
    (one run always starts). Several processes may fill one file: each finished run is added under a
    lock to the file as it is then, and a run another process has finished is skipped."""
    from filelock import FileLock

    path = Path(path)
    lock = FileLock(str(path) + ".lock")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs"
    start, ran = time.perf_counter(), 0
    for setting in settings:
        for seed in seeds:
            if run_key(setting, seed) in {run_key(r["setting"], r["seed"]) for r in _read(path)["runs"]}:
                continue
            if budget_s is not None and ran and time.perf_counter() - start > budget_s:
                log(f"{path.stem}: time budget spent; run again to continue")
                return _read(path)
            t = time.perf_counter()
            result = experiment(dict(setting), seed)
            seconds = round(time.perf_counter() - t, 1)
            with lock:
                data = _read(path)
                data["meta"] = {**data["meta"], **(meta or {}), "machine": machine}
                if run_key(setting, seed) not in {run_key(r["setting"], r["seed"]) for r in data["runs"]}:
                    data["runs"].append({"setting": setting, "seed": seed, "result": result, "seconds": seconds})
                    write_sweep(path, data)
            ran += 1
            log(f"{path.stem}: {setting} seed {seed}: {seconds} s")
    return _read(path)


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


def _by_seed(sweep: dict, metric: str, where: dict) -> dict:
    return {run["seed"]: value(run["result"], metric) for run in sweep["runs"]
            if all(run["setting"].get(k) == v for k, v in where.items())}


def paired(sweep: dict, metric: str, a: dict, b: dict) -> dict:
    """The seed-paired difference A - B of ``metric`` between the settings matching ``a`` and ``b``:
    {"n", "diffs", "mean", "low", "high", "wins" (seeds where A > B), "verdict"}; the verdict is
    "higher" or "lower" when the 95% interval excludes zero, else "no difference shown"."""
    from scipy import stats

    xa, xb = _by_seed(sweep, metric, a), _by_seed(sweep, metric, b)
    seeds = sorted(set(xa) & set(xb))
    diffs = [xa[s] - xb[s] for s in seeds]
    n = len(diffs)
    out = {"n": n, "seeds": seeds, "diffs": diffs, "wins": sum(d > 0 for d in diffs)}
    if n < 2:
        return {**out, "mean": diffs[0] if diffs else float("nan"), "low": float("-inf"), "high": float("inf"),
                "verdict": "no difference shown"}
    mean = sum(diffs) / n
    sd = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5
    half = float(stats.t.ppf(0.975, n - 1)) * sd / n ** 0.5
    verdict = "higher" if mean - half > 0 else "lower" if mean + half < 0 else "no difference shown"
    return {**out, "mean": mean, "low": mean - half, "high": mean + half, "verdict": verdict}


def paired_text(p: dict, digits: int = 3) -> str:
    """'+0.021 [+0.008, +0.034], 5/5 seeds: higher'."""
    f = f"+.{digits}f"
    return (f"{p['mean']:{f}} [{p['low']:{f}}, {p['high']:{f}}], {p['wins']}/{p['n']} seeds: {p['verdict']}")
