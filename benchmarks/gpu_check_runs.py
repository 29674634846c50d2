"""The end-to-end stages of ``gpu_check.py``: the command line as a user runs it, on JPEG files
written for the check (``bench_train_step.jpeg_folder``), each command in its own process.

    e2e       train (FCAENet, 12 + 48 bits, ``--profile gpu``: ResNet-50 at 448 px from a random-weights
              file, since the machine may have no connection; without CUDA ``--profile cpu`` at 32 px), then
              evaluate, query and encode (``--no-ray``) that run
    torchrun  the same training under torchrun, one process per GPU (nccl), then evaluate. With one
              GPU the processes' group has one member: DDP, SyncBatchNorm and the collectives still
              run through nccl, with nothing to split. The torchrun processes run ``ddp_driver``,
              which is ``python -m fgh_tutorial`` that records the group it joined.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CPU_SIZE = 32  # the CPU form's image size (the cpu profile's minires, run smaller)


def _cli(st, name, args, runner=None, env=None):
    """Run one command (``python -m fgh_tutorial ARGS`` unless ``runner``); its exit status is a check."""
    cmd = (runner or [sys.executable, "-m", "fgh_tutorial"]) + ["--debug", *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})})
    print(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}", flush=True)
    st.figure(f"{name}: wall time", time.perf_counter() - start, "s")
    st.check(f"{name} exits 0", proc.returncode == 0, "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or [""])[-1][:300])
    return proc


def _data(st, size: int):
    """root/train/<class>/*.jpg (8 classes, 80 images) and root/test (one per class) at ``size`` px."""
    from bench_train_step import jpeg_folder

    from fgh_tutorial.data.loader import train_resize

    root = st.work / "jpegs"
    if not root.exists():
        jpeg_folder(root, 80, 8, train_resize(size))
    return root


def _train_args(st, data, out):
    args = ["train", "--dataset", "folder", "--data", str(data), "--method", "fcaenet", "--bits", "12,48",
            "--iterations", "2", "--epochs", "1", "--samples", "48", "--batch-size", "16", "--positives", "dataset",
            "--out", str(out)]
    if not st.cuda:  # 32 px, decoded in this process: loader workers would cost more than they save
        return args + ["--profile", "cpu", "--image-size", str(CPU_SIZE), "--workers", "0"]
    import torch
    import torchvision

    weights = st.work / "resnet50.pt"  # random weights: the machine may have no connection for ImageNet's
    if not weights.exists():
        torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
    return args + ["--profile", "gpu", "--weights", str(weights), "--workers", "4"]


def _evaluate(st, run, name):
    proc = _cli(st, name, ["evaluate", "--run", str(run)])
    if proc.returncode == 0:
        per = json.loads(proc.stdout).get("per_length", {})
        ok = set(per) == {"12", "48"} and all(0 <= per[b]["map"] <= 1 for b in per)
        st.check(f"{name}: tie-aware mAP of both code lengths", ok, ", ".join(f"{b} bits {per[b]['map']:.3f}" for b in per))


def e2e(st):
    from fgh_tutorial.retrieval.codes import load_codes

    data = _data(st, 448 if st.cuda else CPU_SIZE)
    run = st.work / "run"
    if _cli(st, "train", _train_args(st, data, run)).returncode != 0:
        return
    _evaluate(st, run, "evaluate")
    image = sorted((data / "test").rglob("*.jpg"))[0]
    proc = _cli(st, "query", ["query", "--run", str(run), "--k", "10", str(image)])
    if proc.returncode == 0:
        hits = [line for line in proc.stdout.splitlines() if "database #" in line]
        dist = [int(line.rsplit("distance", 1)[1]) for line in hits]
        st.check("query: ten hits by distance", len(hits) == 10 and dist == sorted(dist), f"distances {dist}")
    codes = st.work / "codes.npz"
    if _cli(st, "encode", ["encode", "--run", str(run), "--data", str(data / "test"), "--out", str(codes), "--no-ray",
                           "--workers", "1", "--quiet", "--bits", "48"]).returncode == 0:
        words, bits, _ = load_codes(codes)
        n = len(list((data / "test").rglob("*.jpg")))
        st.check("encode: one 48-bit code per image (--bits 48 of the run's 12 and 48)", bits == 48 and len(words) == n,
                 f"{len(words)} codes of {bits} bits")


def torchrun(st):
    import torch

    gpus = torch.cuda.device_count() if st.cuda else 2  # without CUDA: two gloo processes
    data, run, record = _data(st, 448 if st.cuda else CPU_SIZE), st.work / "ddp_run", st.work / "groups"
    record.mkdir(exist_ok=True)
    runner = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={gpus}",
              str(REPO / "benchmarks" / "gpu_check.py"), "--ddp-driver"]
    if _cli(st, f"torchrun train, {gpus} process(es)", _train_args(st, data, run), runner, {"FGH_GROUP_RECORD": str(record)}).returncode:
        return
    groups = [json.loads(p.read_text()) for p in sorted(record.glob("rank*.json"))]
    backend = "nccl" if st.cuda else "gloo"
    ok = len(groups) == gpus and all(g["backend"] == backend and g["world"] == gpus for g in groups)
    st.check(f"every process joined one {backend} group of {gpus}", ok, json.dumps(groups))
    _evaluate(st, run, "evaluate the torchrun run")


RUNS = {"e2e": e2e, "torchrun": torchrun}


def ddp_driver(argv) -> int:
    """``python -m fgh_tutorial ARGV`` in a torchrun process, recording the group it joins in
    $FGH_GROUP_RECORD/rankN.json; one process on a GPU forms a one-member nccl group itself
    (``join_from_env`` returns None for one process)."""
    import torch
    import torch.distributed as dist

    from fgh_tutorial import cli
    from fgh_tutorial.training import distributed

    join = distributed.join_from_env

    def joined(device=None):
        if int(os.environ.get("WORLD_SIZE", "1")) == 1 and torch.cuda.is_available():
            here = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(here)
            dist.init_process_group("nccl", rank=0, world_size=1, device_id=here)
            group = distributed.Distributed(0, 1, here, owns_group=True)
        else:
            group = join(device)
        if group is not None and os.environ.get("FGH_GROUP_RECORD"):
            path = Path(os.environ["FGH_GROUP_RECORD"]) / f"rank{group.rank}.json"
            path.write_text(json.dumps({"rank": group.rank, "world": group.world, "backend": dist.get_backend(),
                                        "device": str(group.device)}))
        return group

    distributed.join_from_env = joined
    return cli.main(argv)
