"""The multi-seed experiments behind notebooks 03-05 (``fgh_tutorial.course.experiments``).

    python benchmarks/sweeps.py srem               # every missing (setting, seed) of one sweep
    python benchmarks/sweeps.py srem --budget 150  # start no new run after 150 s; run again to go on
    python benchmarks/sweeps.py probe              # the erasing probe of the course model (no training)
    python benchmarks/sweeps.py fair               # the fair tests (course/fair.py): 5 paired seeds per arm
    python benchmarks/sweeps.py fair --data default --arms adsh parts   # a part of it
    python benchmarks/sweeps.py fair-heldout --arms adsh srem-grid10    # the same runs on seeds 5-9

Results go to ``assets/sweeps/<name>.json`` (one entry per finished run, written atomically, so a
sweep resumes where it stopped); the notebooks read and plot them. Every run starts from the cached
course model of notebook 01 trained on the run's SynthBirds variant ($FGH_CACHE, trained first when
missing). Runs use ``--threads`` CPU threads (default 2, the course profile's: every stored sweep ran at 2,
and a notebook's live run repeats a row only at the sweep's thread count, which the file records).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from fgh_tutorial.course import experiments, fair  # noqa: E402
from fgh_tutorial.course.sweeps import run_key, run_sweep, write_sweep  # noqa: E402

OUT = ROOT / "assets" / "sweeps"


def probe(threads: int) -> None:
    """The erasing probe of the course model on both SynthBirds variants, plus random cells."""
    start = time.perf_counter()
    data = {"name": "probe", "meta": {"threads": threads, "what": experiments.srem_probe.__doc__.split("\n\n")[0]},
            "probe": {d: experiments.srem_probe(experiments.course_model(d), d) for d in experiments.DATA},
            "random": experiments.srem_probe(experiments.course_model(), "default", random=True)["random"]}
    data["meta"]["seconds"] = round(time.perf_counter() - start, 1)
    write_sweep(OUT / "probe.json", data)
    print(f"probe: {data['meta']['seconds']} s -> {OUT / 'probe.json'}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", choices=["probe", "fair", "fair-heldout", "fair-pilot", *experiments.SWEEPS])
    parser.add_argument("--budget", type=float, default=None, help="start no new run after this many seconds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--arms", nargs="+", default=list(fair.ARMS), choices=list(fair.ARMS), help="fair: these arms")
    parser.add_argument("--data", nargs="+", default=list(experiments.DATA), choices=list(experiments.DATA),
                        help="fair: these SynthBirds variants")
    parser.add_argument("--lr", type=float, nargs="+", default=list(fair.PILOT_LR), help="fair-pilot: these rates")
    args = parser.parse_args(argv)
    if args.seeds is None and args.sweep == "fair-pilot":
        args.seeds = [0]
    if args.seeds is None:
        args.seeds = list({"fair": fair.SEEDS, "fair-heldout": fair.HELDOUT_SEEDS}.get(args.sweep, experiments.SEEDS))
    torch.set_num_threads(args.threads)
    if args.sweep == "probe":
        return probe(args.threads)
    if args.sweep in ("fair", "fair-heldout"):
        fn, settings = fair.fair_run, fair.settings(args.arms, args.data)
    elif args.sweep == "fair-pilot":
        fn, settings = fair.fair_run, fair.pilot_settings(args.lr)
    else:
        fn, settings = experiments.SWEEPS[args.sweep]
    meta = {"threads": args.threads, "experiment": f"{fn.__module__}.{fn.__name__}",
            "rerun": f"python benchmarks/sweeps.py {args.sweep}"}
    data = run_sweep(OUT / f"{args.sweep}.json", fn, settings, args.seeds, meta, args.budget)
    asked = {run_key(s, seed) for s in settings for seed in args.seeds}
    done = sum(run_key(r["setting"], r["seed"]) in asked for r in data["runs"])
    print(f"{args.sweep}: {done} of {len(asked)} runs asked for are done ({len(data['runs'])} in the file)")


if __name__ == "__main__":
    main()
