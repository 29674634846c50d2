"""The frozen backbone (``train --freeze-backbone``) against its top stages trained (``train
--train-top K``), in the same run: each mode is the command line a user runs, in a child process,
with its defaults, from an empty run folder (so every cache is built and timed).

Printed per mode: tie-aware mAP@all at 12/24/32/48 bits (``metrics.json``: the queries against
the database codes V), the wall time of the whole command (data listing, cache build, training,
metrics), the size of its cache, and its peak memory: ``ru_maxrss`` of the child from
``os.wait4``, i.e. the largest resident set of the training process or of one of its image
decoding workers (each is counted alone, not summed). Then top / frozen ratios and the goal
(at least twice the frozen mAP at 48 bits and better at every length, <= 15 minutes and <= 4 GB
in all), with the load average of the machine before and after, since other jobs share its cores.

Stanford Cars (default, $FGH_DATA or ROOT with train/ and test/; efficientnet-lite0, 128 px) or
SynthBirds (``--synthetic``: efficientnet-lite0, 64 px). The run folders live in a temporary folder
that is deleted at the end (they hold maps of the images), unless --keep.

    python benchmarks/bench_top_stages.py [ROOT] [--top 3] [--classes 20]
    python benchmarks/bench_top_stages.py --synthetic
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LENGTHS = (12, 24, 32, 48)
GOAL_SECONDS, GOAL_BYTES = 15 * 60, 4 << 30


def subset_folder(root: Path, classes: int, where: Path) -> Path:
    """A folder of symbolic links to the first ``classes`` class folders of train/ and test/."""
    for split in ("train", "test"):
        (where / split).mkdir(parents=True)
        for folder in sorted(p for p in (root / split).iterdir() if p.is_dir())[:classes]:
            (where / split / folder.name).symlink_to(folder.resolve(), target_is_directory=True)
    return where


def run_mode(name, args, out: Path, quiet: bool) -> dict:
    """One ``train`` command in a child process: its metrics, wall time, peak memory, cache size."""
    command = [sys.executable, "-m", "fgh_tutorial", "train", *args, "--bits", ",".join(map(str, LENGTHS)),
               "--out", str(out / name)]
    log = out / f"{name}.log"
    start = time.perf_counter()
    with open(log, "w") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    text = log.read_text()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: {' '.join(command)} failed:\n{text[-2000:]}")
    metrics = json.loads((out / name / "metrics.json").read_text())["per_length"]
    cache = re.search(r"caching the frozen stages' maps: (.*)", text)
    if not quiet:
        print(f"  {name}: {seconds:.0f} s, peak {usage.ru_maxrss / 1024:.0f} MB" + (f"; {cache[1]}" if cache else ""),
              flush=True)
    return {"map": [metrics[str(b)]["map"] for b in LENGTHS], "seconds": seconds, "peak": usage.ru_maxrss * 1024,
            "cache": cache[1].split(" in ")[0] if cache else "pooled features (features.npz)"}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", nargs="?", default=os.environ.get("FGH_DATA"), help="the Cars folder (default: $FGH_DATA)")
    p.add_argument("--top", type=int, default=3, help="K, the top stages trained (default 3: efficientnet-lite0's last "
                                                     "two block groups and its 1 x 1 head convolution; chosen on Cars' "
                                                     "validation split, see the README)")
    p.add_argument("--classes", type=int, help="only the first N classes (a quick check, not the benchmark)")
    p.add_argument("--synthetic", action="store_true", help="SynthBirds at 64 px instead of Cars")
    p.add_argument("--method", default="adsh", choices=["adsh", "adsh+esrl"])
    p.add_argument("--keep", metavar="DIR", help="keep the run folders in DIR")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    work = Path(a.keep or tempfile.mkdtemp(prefix="bench-top-"))
    work.mkdir(parents=True, exist_ok=True)
    if a.synthetic:
        data, what = ["--dataset", "synthetic", "--image-size", "64"], "SynthBirds, 64 px"
    else:
        if not a.root or not (Path(a.root) / "train").is_dir() or not (Path(a.root) / "test").is_dir():
            print(f"skipped: no Cars folder with train/ and test/ (got {a.root!r}; pass ROOT or set FGH_DATA)")
            return 0
        root = subset_folder(Path(a.root), a.classes, work / "data") if a.classes else Path(a.root)
        data = ["--dataset", "folder", "--data", str(root), "--image-size", "128"]
        what = f"Stanford Cars{f', first {a.classes} classes' if a.classes else ''}, 128 px"
    common = [*data, "--backbone", "efficientnet_lite0", "--method", a.method]
    load_before = os.getloadavg()
    print(f"{what}, efficientnet-lite0 (offline ImageNet weights), {a.method}, each mode's defaults, "
          f"{os.cpu_count()} CPUs; load average before: {' '.join(f'{x:.1f}' for x in load_before)}", flush=True)
    try:
        start = time.perf_counter()
        rows = {"frozen backbone (--freeze-backbone)": run_mode("frozen", [*common, "--freeze-backbone"], work, a.quiet),
                f"top stages (--train-top {a.top})": run_mode(f"top{a.top}", [*common, "--train-top", str(a.top)], work,
                                                              a.quiet)}
        total = time.perf_counter() - start
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    load_after = os.getloadavg()
    print("\ntie-aware mAP@all (queries against the database codes V); wall time of the whole command; peak RSS")
    print(f"{'mode':34s}" + "".join(f"{b:>8d} bits" for b in LENGTHS) + f"{'wall':>9s}{'peak':>10s}  cache")
    for name, r in rows.items():
        print(f"{name:34s}" + "".join(f"{m:13.3f}" for m in r["map"]) + f"{r['seconds']:8.0f}s"
              f"{r['peak'] / 2 ** 20:7.0f} MB  {r['cache']}")
    frozen, top = rows.values()
    ratios = [t / f if f > 0 else float("inf") for t, f in zip(top["map"], frozen["map"])]
    print(f"{'top / frozen':34s}" + "".join(f"{r:12.2f}x" for r in ratios)
          + f"{top['seconds'] / frozen['seconds']:8.2f}x{top['peak'] / frozen['peak']:9.2f}x")
    peak = max(r["peak"] for r in rows.values())
    goals = {"mAP at 48 bits >= 2x frozen": ratios[-1] >= 2, "better at every length": min(ratios) > 1,
             "whole run <= 15 min": total <= GOAL_SECONDS, "peak memory <= 4 GB": peak <= GOAL_BYTES}
    print(f"\nwhole run {total:.0f} s, peak {peak / 2 ** 20:.0f} MB; load average after: "
          f"{' '.join(f'{x:.1f}' for x in load_after)}")
    print("goals: " + "; ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in goals.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
