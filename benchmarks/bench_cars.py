"""Stanford Cars (196 car models) at 12/24/32/48 bits with the offline efficientnet-lite0 ImageNet
weights: tie-aware mAP@all of float cosine on the pooled features, LSH, ITQ and the frozen-backbone
ADSH hash layer (training/frozen.py, the CPU path of ``train --freeze-backbone``); fine-tuned ADSH
and FCAENet (the paper schedule, data through the loader's workers) only where a GPU is available.

The protocol is the command line's (``data.course_splits``): the database is train/ less a seeded
10% held out for model selection, the queries are test/. The pooled features are extracted once and
cached in --cache (a fingerprint of the files and the weights decides when they are stale); the
script also times the extraction of a few hundred images, so that every run reports a throughput.

    python benchmarks/bench_cars.py [ROOT]        ROOT/{train,test}/<class>/*.jpg, default $FGH_DATA
"""
import argparse
import os
import sys
import time
from pathlib import Path

import torch

from fgh_tutorial.data import course_splits, subset
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.retrieval.baselines import ITQ, LSH
from fgh_tutorial.retrieval.codes import binarize
from fgh_tutorial.retrieval.metrics import map_from_distances, mean_average_precision
from fgh_tutorial.runs.config import FROZEN_DEFAULTS, columns
from fgh_tutorial.runs.options import parse_lengths
from fgh_tutorial.systems import AsymmetricConfig, get_system
from fgh_tutorial.training.asymmetric import evaluate_asymmetric
from fgh_tutorial.training.frozen import cache_is_current, cached_features, encode_features, extract_features, train_head
from fgh_tutorial.training.profiles import get_profile, seed_everything
from fgh_tutorial.training.schedules import paper_milestones, paper_schedule


def per_length(q, db, q_y, db_y, lengths):
    return [mean_average_precision(q[:, columns(lengths, b)], db[:, columns(lengths, b)], q_y, db_y) for b in lengths]


def fine_tune(name, profile, splits, lengths, iterations, device, progress):
    """A system fine-tuned end to end on the images, the paper's schedule (FCAENet 4.2)."""
    system = get_system(name)
    (db_x, db_y), (q_x, q_y), val = splits["train"], splits["test"], splits["val"]
    torch.manual_seed(profile.seed)
    backbone = build_backbone(profile.backbone, pretrained=True)
    model = system.build(backbone, sum(lengths), int(db_y.max()) + 1).to(device)
    paper = paper_schedule(lengths)
    iterations = iterations or paper.iterations
    cfg = system.config(AsymmetricConfig(segments=lengths, iterations=iterations, epochs=paper.epochs if device.type == "cuda" else 1,
                                         samples=2000, schedule="paper", milestones=paper_milestones(lengths, iterations),
                                         positives="dataset", seed=profile.seed))
    start = time.perf_counter()
    V, _ = system.train(model, db_x, db_y, cfg, val=val, progress=progress)
    seconds = time.perf_counter() - start
    return evaluate_asymmetric(model, q_x, q_y, V, db_y, lengths), seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", nargs="?", default=os.environ.get("FGH_DATA"), help="the Cars folder (default: $FGH_DATA)")
    p.add_argument("--bits", default="12,24,32,48")
    p.add_argument("--image-size", type=int, default=128, help="the Cars copy's short side is 128 px")
    p.add_argument("--cache", default="build/bench_cars", help="folder of the cached features")
    p.add_argument("--threads", type=int, default=2, help="CPU threads of torch and numba")
    p.add_argument("--time-images", type=int, default=256, help="images whose extraction is timed in this run")
    p.add_argument("--gpu-iterations", type=int, help="fine-tuning iterations (default: the paper's 60)")
    p.add_argument("--finetune-on-cpu", type=int, metavar="ITERATIONS",
                   help="check the fine-tuning path on the CPU with this many 1-epoch iterations (slow; not a result)")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args()
    if not a.root or not (Path(a.root) / "train").is_dir() or not (Path(a.root) / "test").is_dir():
        print(f"skipped: no Cars folder with train/ and test/ (got {a.root!r}; pass ROOT or set FGH_DATA)")
        return 0
    lengths = parse_lengths(a.bits)
    import numba

    numba.set_num_threads(a.threads)  # numba's OpenMP pool also sets torch's thread count: set both
    profile = get_profile("cpu", dataset="folder", data_root=a.root, image_size=a.image_size,
                          backbone="efficientnet_lite0", pretrained=True, threads=a.threads)
    seed_everything(profile.seed, profile.threads)
    splits = course_splits(profile)
    sizes = {k: len(v[0]) for k, v in splits.items()}
    backbone = build_backbone(profile.backbone, pretrained=True)
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    print(f"Stanford Cars, {int(splits['train'][1].max()) + 1} classes: database {sizes['train']}, validation "
          f"{sizes['val']}, queries {sizes['test']}; efficientnet-lite0 (offline ImageNet weights), {a.image_size} px, "
          f"{device.type}, {a.threads} threads")

    n = min(a.time_images, sizes["train"])
    start = time.perf_counter()
    extract_features(backbone, {"timed": (subset(splits["train"][0], range(n)), splits["train"][1][:n])}, device,
                     progress=False)
    rate = n / (time.perf_counter() - start)
    cache = Path(a.cache) / "features.npz"
    cached = cache_is_current(backbone, splits, cache)
    start = time.perf_counter()
    feats = cached_features(backbone, splits, cache, device, progress=not a.quiet)
    t_feat = time.perf_counter() - start
    print(f"feature extraction: {rate:.1f} images/s in this run ({n} images); all {sum(sizes.values())} images: "
          f"{'read from the cache' if cached else 'extracted'} in {t_feat:.1f} s ({cache})")

    (f_db, y_db), (f_q, y_q) = feats["train"], feats["test"]
    rows = {}
    normed = lambda f: f / f.norm(dim=1, keepdim=True)
    cosine = map_from_distances(-(normed(f_q) @ normed(f_db).T).numpy(), y_q, y_db)
    rows["float cosine (1280-d)"] = [cosine] * len(lengths)
    for name, kind in (("LSH", LSH), ("ITQ", ITQ)):
        fitted = [kind(b, seed=profile.seed).fit(f_db.numpy()) for b in lengths]
        rows[name] = [mean_average_precision(m.encode(f_q.numpy()), m.encode(f_db.numpy()), y_q, y_db) for m in fitted]

    cfg = AsymmetricConfig(segments=lengths, seed=profile.seed, **FROZEN_DEFAULTS)
    start = time.perf_counter()
    head, V, hist = train_head(feats, cfg, progress=not a.quiet)
    t_head = time.perf_counter() - start

    class Head:  # encode_features needs the hash layer only
        pass

    net = Head()
    net.head = head
    rows["ADSH, frozen backbone"] = per_length(encode_features(net, f_q), binarize(V), y_q, y_db, lengths)
    print(f"frozen-backbone ADSH: {cfg.iterations} iterations x {cfg.epochs} epochs of {min(cfg.samples, len(y_db))} "
          f"features, {cfg.optimizer} lr {cfg.lr}: {t_head:.1f} s of training ({device.type}); best iteration "
          f"{hist.best_iteration} on validation")

    tuned = {}
    if cuda or a.finetune_on_cpu:
        for name in ("adsh", "fcaenet"):
            scores, seconds = fine_tune(name, profile, splits, lengths, a.gpu_iterations or a.finetune_on_cpu, device,
                                        not a.quiet)
            tuned[name] = seconds
            rows[f"{get_system(name).label}, fine-tuned" + ("" if cuda else " (CPU check, not a result)")] = scores
    print(f"\ntie-aware mAP@all, {sizes['test']} queries x {sizes['train']} database items")
    print(f"{'method':46s}" + "".join(f"{b:>8d} bits" for b in lengths))
    for name, values in rows.items():
        print(f"{name:46s}" + "".join(f"{v:13.3f}" for v in values))
    if not cuda and not a.finetune_on_cpu:
        print(f"{'ADSH, fine-tuned':46s}   not run: no GPU here")
        print(f"{'FCAENet, fine-tuned':46s}   not run: no GPU here")
    for name, seconds in tuned.items():
        print(f"{name} fine-tuning: {seconds:.0f} s on {device.type}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
