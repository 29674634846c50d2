"""Command line.

    python -m fgh_tutorial course                       run every notebook, print key numbers
    python -m fgh_tutorial train --dataset synthetic --bits 48 --method adsh --out runs/adsh48
    python -m fgh_tutorial evaluate --run runs/adsh48
    python -m fgh_tutorial query --run runs/adsh48 bird1.jpg bird2.jpg
    python -m fgh_tutorial verify --data my_images/     decode every image, list the bad ones
    python -m fgh_tutorial encode --run runs/adsh48 --data my_images/ --out my_codes.npz   [--ray auto]
    python -m fgh_tutorial explore --run runs/adsh48 [--run runs/other ...]   the explorer in a browser
    torchrun --nproc_per_node 4 -m fgh_tutorial train ...   data-parallel training, one process per GPU

A failure is one line "error: ..." (exit status 2); --debug shows the traceback.
"""
from __future__ import annotations

import argparse
import sys

from . import commands


def main(argv=None) -> int:
    from .reporting import run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # anywhere on the line, for every command
    argv = [a for a in argv if a != "--debug"]
    parser = argparse.ArgumentParser(prog="python -m fgh_tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the traceback of a failure")
    sub = parser.add_subparsers(dest="command", required=True)
    course = sub.add_parser("course", help="execute the notebooks and print their key numbers")
    course.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/NN_*.ipynb)")
    course.add_argument("--out", default="build/course", help="folder for executed notebooks and HTML")
    course.set_defaults(handler=commands.course)

    from ..data.real import LOADERS
    from ..runs.options import OPTIONS
    from ..systems import describe

    train = sub.add_parser("train", help="train a hashing system and write a run folder",
                           description="Train a hashing system and write a run folder.\n\nsystems (--method):\n" + describe(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(train, OPTIONS)
    train.set_defaults(handler=commands.train)

    evaluate = sub.add_parser("evaluate", help="metrics of a run on its query split")
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--encode-database", action="store_true", help="encode the database with the network instead of V")
    evaluate.set_defaults(handler=commands.evaluate)

    query = sub.add_parser("query", help="top-k database items of image files")
    query.add_argument("--run", required=True)
    query.add_argument("--k", type=_positive, default=10)
    query.add_argument("--bits", type=_positive, help="the code length to search with (runs of several; default: the longest)")
    query.add_argument("images", nargs="+")
    query.set_defaults(handler=commands.query)

    verify = sub.add_parser("verify", help="decode every image of a dataset and list the files that fail")
    verify.add_argument("--data", required=True, help="the dataset's folder")
    verify.add_argument("--dataset", choices=["folder", *LOADERS], default="folder",
                        help="the folder's layout (default: every image file under --data)")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(handler=commands.verify)

    enc = sub.add_parser("encode", help="encode every image under a folder into a codes file (Ray, resumable)")
    enc.add_argument("--run", required=True, help="the run folder whose network encodes")
    enc.add_argument("--data", required=True, help="the folder of images (searched recursively)")
    enc.add_argument("--out", required=True, help="the codes file (.npz); OUT.paths.json lists the images")
    enc.add_argument("--bits", type=_positive, help="the code length to write (required for a run of several)")
    enc.add_argument("--ray", metavar="ADDRESS", help="a Ray cluster: auto or host:port (default: a local Ray "
                                                     "instance, or this process without the 'scale' extra)")
    enc.add_argument("--no-ray", action="store_true", help="encode in this process")
    enc.add_argument("--batch-size", type=_positive, default=64)
    enc.add_argument("--shard-size", type=_positive, default=4096, help="images per resumable shard")
    enc.add_argument("--workers", type=_non_negative, help="Ray workers (default: one per GPU, else per CPU); with "
                                                            "--no-ray, image-decoding processes (0: none)")
    enc.add_argument("--quiet", action="store_true", help="no progress bar")
    enc.set_defaults(handler=commands.encode)

    explore = sub.add_parser("explore", help="the retrieval explorer over run folders, in a browser (Voila, loopback)")
    explore.add_argument("--run", required=True, action="append", help="a run folder (repeat for several)")
    explore.add_argument("--port", type=_positive, default=8866, help="the port on 127.0.0.1 (default: 8866)")
    explore.add_argument("--no-browser", action="store_true", help="serve only; do not open a browser")
    explore.set_defaults(handler=commands.explore)

    args = parser.parse_args(argv)
    if getattr(args, "dataset", "synthetic") != "synthetic" and not args.data:
        parser.error(f"--dataset {args.dataset} needs --data ROOT (the dataset's folder)")
    return run_command(args.handler, args, debug, argv)


def add_options(parser, options) -> None:
    """An argument of ``parser`` for each ``runs.options.Option``, in order; options that exclude
    each other go into one mutually exclusive group."""
    groups = {}  # the group of each option that excludes another
    for o in options:
        where = parser
        if o.excludes:
            where = groups[o.name] = groups.get(o.excludes) or parser.add_mutually_exclusive_group()
        if o.kind is bool:
            where.add_argument(o.flag, action="store_true", help=o.help)
        else:
            where.add_argument(o.flag, type=_type(o), default=o.default, choices=o.options(), required=o.required,
                               metavar=o.metavar, help=o.help)


def _type(option):
    """The argparse type of an option: text to its value, checked as far as the text alone tells."""
    if option.kind is int:
        return _positive if option.least == 1 else _non_negative
    return {float: float, tuple: _lengths}.get(option.kind)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _lengths(text):
    from ..runs.options import parse_lengths

    try:
        return parse_lengths(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


__all__ = ["add_options", "main"]
