"""Images per second of the full FCAENet training step, with the data read from JPEG files on disk,
against a bare forward-backward step of the same backbone on tensors already on the device, both
measured in this run.

Full step: ``train_epoch`` of the asymmetric loop on an image folder: the plan (sampled rows, ESRL
positives from the whole training set, per-image seeds), JPEG decoding, resize, random crop and
flip in the loader's worker processes, pinned non-blocking copies, SREM (channel-mean CAM and
erasing), the anchor, erased and positive views, ADSH + ESRL losses, SGD; bf16 autocast and
channels_last on CUDA. It passes three image views forward and backward per anchor (plus the
attention map's forward), so its throughput per view is 3 x anchors/s. Bare step: the same
backbone + a linear layer, cross-entropy, SGD, on a batch resident on the device.

Goal on a GPU: full throughput per view >= 0.9 x the bare step's (the pipeline, SREM, losses and
solver cost at most 10%). Without CUDA the script says so and times a small CPU version.
``measure`` returns the figures (``benchmarks/gpu_check.py`` calls it).

    python benchmarks/bench_train_step.py [--size 448] [--batch 64] [--steps 20] [--backbone resnet50]
                                          [--workers N] [--data FOLDER]
"""
import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fgh_tutorial.attention.srem import SREM
from fgh_tutorial.data import default_transform, load_dataset
from fgh_tutorial.data.loader import batch_source, train_resize
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.systems import AsymmetricConfig, get_system
from fgh_tutorial.training.asymmetric import AsymmetricState, make_optimizer, sample, train_epoch, v_step
from fgh_tutorial.training.positives import DatasetPositives


def _picture(args):
    path, seed, h, w = args
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    pixels = np.kron(coarse, np.ones((h // 6 + 1, w // 8 + 1, 1), np.uint8))[:h, :w]
    noise = rng.standard_normal(pixels.shape, dtype=np.float32) * 12
    Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8)).save(path, quality=90)


def jpeg_folder(root: Path, n: int, classes: int, short_side: int, seed: int = 0, processes: int | None = None) -> Path:
    """root/train/<class>/*.jpg and one query per class in root/test: smooth random pictures with
    noise (4:3), JPEG quality 90, image i drawn from the seed (seed, i); written by a pool of
    ``processes`` (default: the CPU count)."""
    h, w = short_side, short_side * 4 // 3
    jobs = []
    for split, count in (("train", n), ("test", classes)):
        for i in range(count):
            folder = root / split / f"c{i % classes:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            jobs.append((folder / f"{i}.jpg", (seed, len(jobs)), h, w))
    with ProcessPoolExecutor(processes or os.cpu_count()) as pool:
        list(pool.map(_picture, jobs, chunksize=8))
    return root


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_images_per_s(backbone_name, size, batch, steps, classes, device):
    backbone = build_backbone(backbone_name)
    model = torch.nn.Sequential()
    model.backbone, model.fc = backbone, torch.nn.Linear(backbone.out_channels, classes)
    model = model.to(device)
    cuda = device.type == "cuda"
    x = torch.randn(batch, 3, size, size, device=device)
    if cuda:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (batch,), device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = torch.nn.functional.cross_entropy(model.fc(model.backbone(x)[1]), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch * steps / (time.perf_counter() - start)


def full_step(folder, backbone_name, size, batch, steps, bits, workers, device):
    """(anchors/s of one timed epoch, seconds of its V-step, n database images, workers)."""
    ds = load_dataset("folder", folder, "train", default_transform(size))
    labels = torch.as_tensor(ds.targets).to(device)
    system = get_system("fcaenet")
    torch.manual_seed(0)
    model = system.build(build_backbone(backbone_name), bits, int(labels.max()) + 1).to(device)
    cfg = system.config(AsymmetricConfig(segments=(bits,), samples=batch * steps, batch_size=batch,
                                         positives="dataset", workers=workers))
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    g = torch.Generator().manual_seed(0)
    state = AsymmetricState(V=torch.where(torch.randn(len(labels), bits, generator=g) >= 0, 1.0, -1.0).to(device))
    opt, erase = make_optimizer(model, cfg), SREM.for_image_size(size, cfg.srem_regions)
    loader, positives = batch_source(ds, device, workers=cfg.workers, size=size), DatasetPositives(labels)
    sample(state, labels, cfg, g)
    train_epoch(model, opt, loader, labels, state, cfg, erase, g, positives)  # warm-up: workers start, kernels load
    sync(device)
    start = time.perf_counter()
    train_epoch(model, opt, loader, labels, state, cfg, erase, g, positives)
    sync(device)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    v_step(state, labels, cfg)
    sync(device)
    return batch * steps / seconds, time.perf_counter() - start, len(labels), loader.workers


GOAL = 0.9  # full step per image view / bare step, on a GPU


def measure(size=448, batch=64, steps=20, bits=48, backbone="resnet50", workers=None, data=None, classes=20) -> dict:
    """Both throughputs and their ratio on this machine's device (CUDA when available)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = data or jpeg_folder(Path(tmp), max(batch * steps, 2 * classes), classes, train_resize(size))
        bare = bare_images_per_s(backbone, size, batch, steps, classes, device)
        anchors, v_seconds, n, workers = full_step(folder, backbone, size, batch, steps, bits, workers, device)
    return {"device": device.type, "backbone": backbone, "size": size, "batch": batch, "steps": steps, "bits": bits,
            "workers": workers, "jpeg_short_side": train_resize(size), "bare_images_s": bare, "full_anchors_s": anchors,
            "full_views_s": 3 * anchors, "ratio": 3 * anchors / bare, "goal": GOAL, "v_step_ms": 1000 * v_seconds, "n": n}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bits", type=int, default=48)
    p.add_argument("--backbone", default="resnet50")
    p.add_argument("--workers", type=int, help="decoding processes (default: from the CPU count)")
    p.add_argument("--data", help="an image folder root/train/<class>/*.jpg (default: JPEGs written to a temporary folder)")
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    if not cuda:
        print("no CUDA device: the GPU goal (full step >= 0.9 x the bare step per image view) was NOT measured; "
              "timing a small CPU version (minires, 64 px, batch 16, 4 steps): CPU figures only")
        a.size, a.batch, a.steps, a.backbone = 64, 16, 4, "minires"
    r = measure(a.size, a.batch, a.steps, a.bits, a.backbone, a.workers, a.data)
    print(f"{r['device']}, {r['backbone']}, {r['size']} px, batch {r['batch']}, {r['steps']} steps, {r['workers']} decoding "
          f"workers, JPEGs of short side {r['jpeg_short_side']} px")
    print(f"bare forward-backward step (tensors on the device) : {r['bare_images_s']:8.1f} images/s")
    print(f"full FCAENet step (JPEG files -> loader -> SREM -> ADSH + ESRL -> SGD): {r['full_anchors_s']:8.1f} anchors/s "
          f"= {r['full_views_s']:8.1f} image views/s (anchor, erased, positive)")
    print(f"V-step after the epoch (n = {r['n']}, {r['bits']} bits): {r['v_step_ms']:.1f} ms")
    print(f"ratio full / bare per image view: {r['ratio']:.2f} "
          + (f"(goal >= {GOAL:g})" if cuda else "(CPU; the GPU goal was not measured)"))


if __name__ == "__main__":
    main()
