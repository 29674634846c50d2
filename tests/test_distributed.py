"""Data-parallel asymmetric training (training/distributed.py): two processes with the gloo
backend on loopback against one process with the same global batch."""
import os
import socket
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from fgh_tutorial.cli import main
from fgh_tutorial.data import SynthBirds
from fgh_tutorial.models.backbones import Backbone
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.runs.folder import load_run
from fgh_tutorial.training import profiles
from fgh_tutorial.training.asymmetric import AsymmetricConfig, train_asymmetric
from fgh_tutorial.training.checkpoints import load_checkpoint, save_checkpoint
from fgh_tutorial.training.distributed import Distributed, join_from_env
from fgh_tutorial.training.loop import StopAfter

pytestmark = pytest.mark.slow  # two processes train

WORLD = 2
CFG = AsymmetricConfig(segments=(12,), iterations=2, epochs=2, samples=60, batch_size=20, lr=0.02, seed=3)


def data():
    """A tiny SynthBirds run: 108 database images and 54 validation images at 24 px."""
    db = SynthBirds("train", per_class=2, image_size=24, seed=0).tensors(False)
    val = SynthBirds("val", per_class=1, image_size=24, seed=0).tensors(False)
    return db, val


def network():
    """A net without batch norm: on the CPU its statistics would be per process (SyncBatchNorm
    needs GPUs), which is not the one-process computation this test compares against."""
    torch.manual_seed(0)
    features = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
    return HashingModel(Backbone(features, 16, "tiny"), 12)


def _worker(rank, port, folder):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist = join_from_env("cpu")
    try:
        (x, y), val = data()
        ckpt = os.path.join(folder, "checkpoints")
        # interrupted after 3 of 4 epochs, then resumed by fresh networks from rank 0's checkpoint
        train_asymmetric(network(), x, y, CFG, ckpt, val, progress=False, dist=dist, callbacks=[StopAfter(3)])
        model = network()
        V, hist = train_asymmetric(model, x, y, CFG, ckpt, val, progress=False, dist=dist)
        fcae = HashingModel(Backbone(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU()), 8, "bn"), 8)
        cfg = AsymmetricConfig(segments=(8,), iterations=1, samples=40, batch_size=20, terms=("srem", "esrl"))
        V2, hist2 = train_asymmetric(fcae, x, y, cfg, progress=False, dist=dist)  # SREM and ESRL: 3 forwards
        # the command line as torchrun starts it, on a small profile
        profiles.PROFILES["cpu"] = replace(profiles.PROFILES["cpu"], per_class=2, per_class_query=1, per_class_val=1)
        code = main(["train", "--bits", "12", "--out", os.path.join(folder, "run"), "--iterations", "1", "--samples", "64"])
        save_checkpoint(os.path.join(folder, f"rank{rank}.pt"),
                        {"V": V, "model": model.state_dict(), "loss": hist.loss, "val_map": hist.val_map,
                         "V2": V2, "loss2": hist2.loss, "cli": code})
    finally:
        dist.close()


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_worker, args=(port, str(folder)), nprocs=WORLD, join=True)
    return folder, [load_checkpoint(folder / f"rank{r}.pt") for r in range(WORLD)]


def test_two_processes_match_one_with_the_same_global_batch(two_processes):
    """Tolerance: the two runs compute the same mean gradient of the same 20-image batches, but
    DDP adds two half-batch sums where one process sums all 20 terms at once, so the floats
    differ in their last bits (about 1e-7 relative per step). Over 6 SGD steps these stay far
    below 1e-4 in the weights and the losses; V is sign(.) of sums of 60 terms of size ~1, so no
    bit sits within such a difference of zero and V must be equal bit for bit."""
    folder, ranks = two_processes
    (x, y), val = data()
    one = network()
    V, hist = train_asymmetric(one, x, y, CFG, None, val, progress=False)
    assert len(ranks[0]["loss"]) == CFG.iterations * CFG.epochs
    assert ranks[0]["loss"] == pytest.approx(hist.loss, rel=1e-4)
    assert ranks[0]["val_map"] == pytest.approx(hist.val_map, abs=1e-4)
    assert torch.equal(ranks[0]["V"], V)
    for name, weight in one.state_dict().items():
        assert torch.allclose(ranks[0]["model"][name], weight, atol=1e-4), name
    assert (folder / "checkpoints" / "asymmetric.pt").exists() and not list(folder.glob("checkpoints/.*tmp"))


def test_ranks_agree_on_V_and_weights(two_processes):
    _, (a, b) = two_processes
    assert torch.equal(a["V"], b["V"]) and torch.equal(a["V2"], b["V2"])
    assert a["loss"] == b["loss"] and a["loss2"] == b["loss2"] and np.isfinite(a["loss2"]).all()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name


def test_the_command_line_under_torchrun_writes_one_run(two_processes):
    folder, ranks = two_processes
    assert [r["cli"] for r in ranks] == [0, 0]
    config, model, _ = load_run(folder / "run")  # complete: its manifest and files check out
    assert config.bits == 12 and model.bits == 12 and not (folder / "run" / ".lock").exists()


def test_shards_cover_every_row_once_with_the_whole_batch_loss():
    for size in (20, 21, 2):
        ranks = [Distributed(r, 3 if size > 2 else 2, torch.device("cpu")) for r in range(3 if size > 2 else 2)]
        rows = np.concatenate([np.arange(size)[d.shard(size)] for d in ranks])
        assert sorted(rows.tolist()) == list(range(size))
        # the W per-process means, scaled, average to the mean over the whole batch
        values = np.random.default_rng(size).random(size)
        scaled = [d.loss_scale(len(values[d.shard(size)]), size) * values[d.shard(size)].mean() for d in ranks]
        assert np.mean(scaled) == pytest.approx(values.mean())
    with pytest.raises(ValueError, match="cannot be split over 2 processes"):
        Distributed(0, 2, torch.device("cpu")).shard(1)


def test_one_process_outside_torchrun(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert join_from_env() is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(ValueError, match="torchrun"):
        join_from_env()
