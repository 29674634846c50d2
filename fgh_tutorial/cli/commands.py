"""What each command of ``python -m fgh_tutorial`` does, given its parsed arguments (``parser.py``
makes them); each returns the exit status. Each imports what its work needs when it runs, so that
``--help`` and a mistyped argument answer at once.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def course(args) -> int:
    from ..course.runner import format_budget, format_summary, run_course

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


def train(args) -> int:
    from ..runs.config import RunConfig
    from ..runs.options import SETTINGS
    from ..runs.train import train_run
    from ..training.distributed import join_from_env

    dist = join_from_env(args.device)  # None unless started by torchrun
    try:
        config = RunConfig.checked(**{o.name: getattr(args, o.name) for o in SETTINGS})
        metrics = train_run(args.out, config, force=args.force, resume=args.resume, dist=dist)
    finally:
        if dist is not None:
            dist.close()
    if dist is not None and not dist.is_main:
        return 0  # rank 0 reports
    print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=1))
    print(f"run written to {args.out}/")
    return 0


def verify(args) -> int:
    from ..data.verify import verify_data

    from ..files import shown

    total, bad = verify_data(args.data, args.dataset, progress=not args.quiet)
    for path, reason in bad:
        print(shown(f"{path}: {reason}"))
    if bad:
        print(f"error: {len(bad)} of {total} image files cannot be decoded (listed above): fix or remove them, "
              "or train with --on-bad-image skip", file=sys.stderr)
        return 2
    print(f"all {total} image files under {args.data} decode")
    return 0


def evaluate(args) -> int:
    from ..runs.folder import evaluate_run

    print(json.dumps(evaluate_run(args.run, args.encode_database), indent=1))
    return 0


def query(args) -> int:
    from ..runs.folder import query_run

    from ..files import shown

    for path, hits in query_run(args.run, args.images, args.k, args.bits):
        print(shown(path))
        for rank, (index, label, distance) in enumerate(hits, 1):
            print(f"  {rank:2d}. database #{index:<7d} class {label:<5d} distance {distance}")
    return 0


def encode(args) -> int:
    from ..runs.encoding import encode_folder, outputs, read_encoded

    out = encode_folder(args.run, args.data, args.out, batch_size=args.batch_size, shard_size=args.shard_size,
                        ray=False if args.no_ray else args.ray, workers=args.workers, progress=not args.quiet,
                        bits=args.bits)
    words, bits, _ = read_encoded(out)
    print(f"encoded {len(words)} images into {out} ({bits}-bit codes; the image of id i is paths[i] in "
          f"{outputs(out)[1]})")
    return 0


def explore(args) -> int:
    from ..app.serve import serve

    return serve(args.run, args.port, not args.no_browser)


__all__ = ["course", "encode", "evaluate", "explore", "query", "train", "verify"]
