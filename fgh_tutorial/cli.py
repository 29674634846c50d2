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
import json
import sys
from pathlib import Path


def _course(args) -> int:
    from .course.runner import format_budget, format_summary, run_course

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
    print("\n" + format_budget(summary))
    return 0


def _train(args) -> int:
    from .runs import train_run
    from .training.distributed import join_from_env

    dist = join_from_env(args.device)  # None unless started by torchrun
    try:
        metrics = train_run(args.out, args.dataset, args.data, args.bits, args.method, args.profile,
                            iterations=args.iterations, epochs=args.epochs, samples=args.samples, device=args.device,
                            force=args.force, resume=args.resume, on_bad_image=args.on_bad_image, dist=dist,
                            **{k: getattr(args, k) for k in TRAIN_OPTIONS})
    finally:
        if dist is not None:
            dist.close()
    if dist is not None and not dist.is_main:
        return 0  # rank 0 reports
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=1))
    print(f"run written to {args.out}/")
    return 0


def _verify(args) -> int:
    from .data.verify import verify_data

    from .files import shown

    total, bad = verify_data(args.data, args.dataset, progress=not args.quiet)
    for path, reason in bad:
        print(shown(f"{path}: {reason}"))
    if bad:
        print(f"error: {len(bad)} of {total} image files cannot be decoded (listed above): fix or remove them, "
              "or train with --on-bad-image skip", file=sys.stderr)
        return 2
    print(f"all {total} image files under {args.data} decode")
    return 0


def _evaluate(args) -> int:
    from .runs import evaluate_run

    print(json.dumps(evaluate_run(args.run, args.encode_database), indent=1))
    return 0


def _query(args) -> int:
    from .runs import query_run

    from .files import shown

    for path, hits in query_run(args.run, args.images, args.k, args.bits):
        print(shown(path))
        for rank, (index, label, distance) in enumerate(hits, 1):
            print(f"  {rank:2d}. database #{index:<7d} class {label:<5d} distance {distance}")
    return 0


def _encode(args) -> int:
    from .encode_folder import encode_folder, outputs, read_encoded

    out = encode_folder(args.run, args.data, args.out, batch_size=args.batch_size, shard_size=args.shard_size,
                        ray=False if args.no_ray else args.ray, workers=args.workers, progress=not args.quiet,
                        bits=args.bits)
    words, bits, _ = read_encoded(out)
    print(f"encoded {len(words)} images into {out} ({bits}-bit codes; the image of id i is paths[i] in "
          f"{outputs(out)[1]})")
    return 0


def _explore(args) -> int:
    from .app.serve import serve

    return serve(args.run, args.port, not args.no_browser)


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
    course.set_defaults(handler=_course)

    from .data.real import LOADERS
    from .models.backbones import NAMES as BACKBONES
    from .systems import SYSTEMS, describe

    train = sub.add_parser("train", help="train a hashing system and write a run folder",
                           description="Train a hashing system and write a run folder.\n\nsystems (--method):\n" + describe(),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("--dataset", choices=["synthetic", *LOADERS], default="synthetic")
    train.add_argument("--data", help="the dataset's folder (real datasets)")
    train.add_argument("--bits", type=_lengths, default=(48,),
                       help="code length, or several learned at once: 12,24,32,48 (default: 48)")
    train.add_argument("--method", choices=list(SYSTEMS), default="adsh", help="the system to train (listed above)")
    train.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    train.add_argument("--out", required=True, help="the run folder")
    train.add_argument("--iterations", type=_positive, help="solver iterations (default: from the profile)")
    train.add_argument("--epochs", type=_positive, help="network epochs per iteration (default: 1; 20 with "
                                                        "--schedule paper, 2 with --freeze-backbone)")
    train.add_argument("--samples", type=_positive, help="database points sampled per iteration (default: 2000; "
                                                         "4000 with --freeze-backbone)")
    train.add_argument("--backbone", choices=BACKBONES,
                       help="the network under the hash layer (default: the profile's: minires for cpu, resnet50 "
                            "for gpu). Offline: efficientnet_lite0 (ImageNet weights from the offline-weights extra) "
                            "and the nets trained from scratch (minires, nin); resnet18/34/50 need --weights FILE "
                            "or a connection to download their ImageNet weights")
    train.add_argument("--weights", metavar="FILE", help="the backbone's weights from a local state-dict file")
    train.add_argument("--image-size", type=_positive, help="input size in pixels (default: the profile's, 64 / 448)")
    train.add_argument("--lr", type=float, help="learning rate (default: the system's; 1e-3 with --schedule paper)")
    train.add_argument("--batch-size", type=_positive, help="mini-batch size (default: 64)")
    train.add_argument("--schedule", choices=["constant", "paper"],
                       help="constant lr, or FCAENet's: SGD, 40/60 iterations of 20 epochs, lr / 10 at fixed "
                            "iterations (scaled to --iterations when given)")
    train.add_argument("--workers", type=_non_negative, help="image-decoding processes (default: from the CPU count)")
    train.add_argument("--freeze-backbone", action="store_true",
                       help="compute the backbone's features once (cached in the run folder), then train the hash "
                            "layer alone: minutes on a laptop CPU (adsh or adsh+esrl)")
    train.add_argument("--train-top", type=_positive, metavar="K",
                       help="compute the maps of the backbone's frozen stages once (and of the mirror images; cached "
                            "in the run folder), then train its K top stages and the hash layer: a laptop CPU learns "
                            "more than with --freeze-backbone (adsh, adsh+esrl, exchnet; stages: README)")
    train.add_argument("--positives", choices=["batch", "dataset"],
                       help="ESRL positives from the mini-batch (default) or from the whole training set (FCAENet)")
    train.add_argument("--compile", action="store_true", help="torch.compile the network (GPU)")
    train.add_argument("--device", help="cpu or cuda (default: the profile's, cpu without a GPU)")
    again = train.add_mutually_exclusive_group()
    again.add_argument("--force", action="store_true", help="--out holds a run: delete it and start over")
    again.add_argument("--resume", action="store_true", help="--out holds a run with the same settings: continue it")
    train.add_argument("--on-bad-image", choices=["fail", "skip"], default="fail",
                       help="an image file that cannot be decoded stops training (fail) or is left out and listed "
                            "in the run folder (skip)")
    train.set_defaults(handler=_train)

    evaluate = sub.add_parser("evaluate", help="metrics of a run on its query split")
    evaluate.add_argument("--run", required=True)
    evaluate.add_argument("--encode-database", action="store_true", help="encode the database with the network instead of V")
    evaluate.set_defaults(handler=_evaluate)

    query = sub.add_parser("query", help="top-k database items of image files")
    query.add_argument("--run", required=True)
    query.add_argument("--k", type=_positive, default=10)
    query.add_argument("--bits", type=_positive, help="the code length to search with (runs of several; default: the longest)")
    query.add_argument("images", nargs="+")
    query.set_defaults(handler=_query)

    verify = sub.add_parser("verify", help="decode every image of a dataset and list the files that fail")
    verify.add_argument("--data", required=True, help="the dataset's folder")
    verify.add_argument("--dataset", choices=["folder", *LOADERS], default="folder",
                        help="the folder's layout (default: every image file under --data)")
    verify.add_argument("--quiet", action="store_true", help="no progress bar")
    verify.set_defaults(handler=_verify)

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
    enc.set_defaults(handler=_encode)

    explore = sub.add_parser("explore", help="the retrieval explorer over run folders, in a browser (Voila, loopback)")
    explore.add_argument("--run", required=True, action="append", help="a run folder (repeat for several)")
    explore.add_argument("--port", type=_positive, default=8866, help="the port on 127.0.0.1 (default: 8866)")
    explore.add_argument("--no-browser", action="store_true", help="serve only; do not open a browser")
    explore.set_defaults(handler=_explore)

    args = parser.parse_args(argv)
    if getattr(args, "dataset", "synthetic") != "synthetic" and not args.data:
        parser.error(f"--dataset {args.dataset} needs --data ROOT (the dataset's folder)")
    return run_command(args.handler, args, debug, argv)


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


TRAIN_OPTIONS = ("backbone", "weights", "image_size", "lr", "batch_size", "schedule", "workers", "freeze_backbone",
                 "positives", "compile", "train_top")


def _lengths(text):
    from .run_options import parse_lengths

    try:
        return parse_lengths(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value
