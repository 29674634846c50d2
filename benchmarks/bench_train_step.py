"""Per-image speed of the course's full FCAENet training step against a bare ResNet-50 step,
both measured in this run (on CUDA; on a CPU it says so and measures a small CPU version).

Full step: SREM triplets (channel-mean CAM, erasing), ADSH + ESRL losses, bf16 autocast,
channels_last, SGD. Bare step: eager bf16 channels_last ResNet-50 forward + backward + SGD step
on device-resident data.

    python benchmarks/bench_train_step.py [--size 448] [--batch 64] [--steps 20]
"""
import argparse

import torch

from fgh_tutorial.systems import get_system
from fgh_tutorial.training.asymmetric import AsymmetricConfig, AsymmetricState, batch_loss
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.retrieval import hard_sign
from fgh_tutorial.training.solver import similarity_ratio
from fgh_tutorial.attention.srem import SREM
from fgh_tutorial.course.timing import best_time


def bare_step(model, opt, x, y, device):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--bits", type=int, default=48)
    a = p.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    if not cuda:
        print("no CUDA device: the GPU goal is not measured; timing a small CPU version (112 px, batch 8, 2 steps)")
        a.size, a.batch, a.steps = 112, 8, 2
    import torchvision

    x = torch.randn(a.batch, 3, a.size, a.size, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 200, (a.batch,), device=device)
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    bare = torchvision.models.resnet50(num_classes=200).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(bare.parameters(), lr=1e-3, momentum=0.9)
    bare_step(bare, opt, x, y, device)
    t_bare, _ = best_time(lambda: ([bare_step(bare, opt, x, y, device) for _ in range(a.steps)], sync()), repeat=2)

    fcaenet = get_system("fcaenet")
    model = fcaenet.build(build_backbone("resnet50"), a.bits, 200).to(device).to(memory_format=torch.channels_last)
    opt2 = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    n = 5994
    labels = torch.randint(0, 200, (n,), device=device)
    cfg = fcaenet.config(AsymmetricConfig(segments=(a.bits,)))
    sample = torch.randperm(n, device=device)[: a.batch]
    state = AsymmetricState(V=hard_sign(torch.randn(n, a.bits, device=device)), sample=sample,
                            U=torch.zeros(a.batch, a.bits, device=device),
                            r=similarity_ratio(labels[sample], labels, 200).float())
    erase = SREM.for_image_size(a.size)
    g = torch.Generator().manual_seed(0)
    pos = torch.arange(a.batch, device=device)

    def full_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = batch_loss(model, x, labels[sample], pos, state, cfg, erase, labels, g)
        opt2.zero_grad(set_to_none=True)
        loss.backward()
        opt2.step()

    full_step()
    t_full, _ = best_time(lambda: ([full_step() for _ in range(a.steps)], sync()), repeat=2)
    images = a.batch * a.steps
    print(f"{device.type}, {a.size} px, batch {a.batch}")
    print(f"bare ResNet-50 step : {images / t_bare:8.1f} img/s")
    print(f"full FCAENet step   : {images / t_full:8.1f} img/s (anchor; with its erased and positive views)")
    print(f"ratio full / bare   : {t_bare / t_full:.2f} (goal >= 1.0 on an H100)")


if __name__ == "__main__":
    main()
