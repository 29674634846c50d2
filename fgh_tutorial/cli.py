"""Command line: ``python -m fgh_tutorial course`` runs every notebook headlessly and prints
their key numbers."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _course(args) -> int:
    from .course import format_summary, run_course

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fgh_tutorial", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="execute the notebooks and print their key numbers")
    course.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/NN_*.ipynb)")
    course.add_argument("--out", default="build/course", help="folder for executed notebooks and HTML")
    course.set_defaults(run=_course)
    args = parser.parse_args(argv)
    return args.run(args)
