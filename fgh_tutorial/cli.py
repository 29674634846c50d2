"""Command line.

    python -m fgh_tutorial course                       run every notebook, print key numbers
    python -m fgh_tutorial train --dataset synthetic --bits 48 --method adsh --out runs/adsh48
    python -m fgh_tutorial evaluate --run runs/adsh48
    python -m fgh_tutorial query --run runs/adsh48 bird1.jpg bird2.jpg
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _course(args) -> int:
    from .course.runner import format_summary, run_course

    notebooks = args.notebooks or sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        print("no notebooks found: run from the repository root or name them", file=sys.stderr)
        return 2
    missing = [str(n) for n in notebooks if not Path(n).exists()]
    if missing:
        print(f"notebooks not found: {', '.join(missing)}", file=sys.stderr)
        return 2
    summary = run_course(notebooks, args.out)
    print(f"\nexecuted notebooks and HTML are in {args.out}/\n")
    print(format_summary(summary))
    return 0


def _train(args) -> int:
    from .runs import train_run

    metrics = train_run(args.out, args.dataset, args.data, args.bits, args.method, args.profile,
                        iterations=args.iterations, epochs=args.epochs, samples=args.samples, device=args.device)
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=1))
    print(f"run written to {args.out}/")
    return 0


def _evaluate(args) -> int:
    from .runs import evaluate_run

    print(json.dumps(evaluate_run(args.run, args.encode_database), indent=1))
    return 0


def _query(args) -> int:
    from .runs import query_run

    for path, hits in query_run(args.run, args.images, args.k):
        print(path)
        for rank, (index, label, distance) in enumerate(hits, 1):
            print(f"  {rank:2d}. database #{index:<7d} class {label:<5d} distance {distance}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgh_tutorial", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="execute the notebooks and print their key numbers")
    course.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/NN_*.ipynb)")
    course.add_argument("--out", default="build/course", help="folder for executed notebooks and HTML")
    course.set_defaults(handler=_course)

    from .data.real import LOADERS
    from .systems import SYSTEMS, describe

    train = sub.add_parser("train", help="train a hashing system and write a run folder",
                           description="Train a hashing system and write a run folder.\n\nsystems (--method):\n" + describe(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--dataset", choices=["synthetic", *LOADERS], default="synthetic")
    train.add_argument("--data", help="the dataset's folder (real datasets)")
    train.add_argument("--bits", type=_bits, default=48)
    train.add_argument("--method", choices=list(SYSTEMS), default="adsh", help="the system to train (listed above)")
    train.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    train.add_argument("--out", required=True, help="the run folder")
    train.add_argument("--iterations", type=_positive, help="solver iterations (default: from the profile)")
    train.add_argument("--epochs", type=_positive, default=1, help="network epochs per iteration")
    train.add_argument("--samples", type=_positive, default=2000, help="database points sampled per iteration")
    train.add_argument("--device", help="cpu or cuda (default: the profile's, cpu without a GPU)")
    train.set_defaults(handler=_train)

    evaluate = sub.add_parser("evaluate", help="metrics of a run on its query split")
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--encode-database", action="store_true", help="encode the database with the network instead of V")
    evaluate.set_defaults(handler=_evaluate)

    query = sub.add_parser("query", help="top-k database items of image files")
    query.add_argument("--run", required=True)
    query.add_argument("--k", type=_positive, default=10)
    query.add_argument("images", nargs="+")
    query.set_defaults(handler=_query)

    args = parser.parse_args(argv)
    if getattr(args, "dataset", "synthetic") != "synthetic" and not args.data:
        parser.error(f"--dataset {args.dataset} needs --data ROOT (the dataset's folder)")
    try:
        return args.handler(args)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _bits(text):
    value = _positive(text)
    if value > 1024:
        raise argparse.ArgumentTypeError(f"bits must be in 1..1024, got {text}")
    return value
