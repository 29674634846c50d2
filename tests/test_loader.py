"""The input pipeline on tiny fake image folders: workers give the same batches as one process
under a seed, the papers' augmentation, training from a Dataset through the loader, ESRL
positives from the whole training set, and the lr steps of the paper schedule."""
import numpy as np
import pytest
import torch
from PIL import Image

from fgh_tutorial.data import default_transform, load_dataset
from fgh_tutorial.data.loader import (Decoded, InMemory, TrainLoader, TrainTransform, batch_source, default_workers, image_files,
                                      train_resize)
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.heads import HashingModel
from fgh_tutorial.training.asymmetric import AsymmetricConfig, AsymmetricHistory, train_asymmetric
from fgh_tutorial.training.positives import DatasetPositives
from fgh_tutorial.training.schedules import lr_at, paper_milestones, paper_schedule


def fake_folder(root, classes=3, per_split=(6, 3), size=(20, 14), seed=0):
    """root/{train,test}/<class>/*.jpg of random colours (non-square, so resize and crop matter)."""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "test"), per_split):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
                pixels[..., c % 3] = 40 + 60 * c  # a class colour
                Image.fromarray(pixels).save(folder / f"{i}.jpg")
    return root


def test_train_transform_is_a_seeded_resize_crop_and_flip():
    image = Image.fromarray(np.arange(14 * 20 * 3, dtype=np.uint8).reshape(14, 20, 3))
    t = TrainTransform(8)
    assert train_resize(448) == 512 and t.resize == 9
    a, b = t(image, 5), t(image, 5)
    assert a.shape == (3, 8, 8) and torch.equal(a, b)
    seen = {t(image, s).sum().item() for s in range(20)}
    assert len(seen) > 2  # crops and flips differ between seeds
    tensor = torch.randn(3, 14, 20)
    assert t(tensor, 1).shape == (3, 8, 8)
    with pytest.raises(ValueError, match="resize"):
        TrainTransform(16, resize=8)


def test_workers_return_the_same_batches_as_one_process(tmp_path):
    ds = load_dataset("folder", fake_folder(tmp_path), "train", default_transform(12))
    plan = [[(0, 10), (5, 11), (17, 12)], [(3, 13), (3, 14)], [(9, 15), (1, 16), (2, 17)]]
    single = list(TrainLoader(ds, 12, workers=0).decode(plan))
    pooled = TrainLoader(ds, 12, workers=2)
    assert pooled.workers == 2 and pooled.loader.persistent_workers
    for _ in range(2):  # the persistent workers serve a second pass as well
        many = list(pooled.decode(plan))
        assert len(many) == 3 and all(torch.equal(a, b) for a, b in zip(single, many))
    assert single[0].shape == (3, 3, 12, 12)
    assert default_workers() >= 0
    assert len(image_files(ds)) == 18


@pytest.mark.slow
def test_training_from_a_dataset_does_not_depend_on_the_workers(tmp_path):
    """The whole loop (plan, positives from the dataset, per-image seeds) through 0 or 2 workers."""
    ds = load_dataset("folder", fake_folder(tmp_path), "train", default_transform(16))
    labels = torch.as_tensor(ds.targets)
    runs = []
    for workers in (0, 2):
        torch.manual_seed(0)
        model = HashingModel(build_backbone("minires"), 8)
        cfg = AsymmetricConfig(segments=(8,), iterations=1, epochs=2, samples=8, batch_size=4, terms=("srem", "esrl"),
                               positives="dataset", workers=workers)
        V, hist = train_asymmetric(model, ds, labels, cfg, progress=False)
        runs.append((V, hist.loss, model.head.fc.weight.detach().clone()))
    assert torch.equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2]) and np.isfinite(runs[0][1]).all()


def test_dataset_positives_share_the_label_and_come_from_outside_the_batch():
    labels = torch.arange(400) % 40  # 40 classes of 10
    draw = DatasetPositives(labels)
    idx = torch.arange(0, 400, 7)
    g = torch.Generator().manual_seed(0)
    pos = draw(idx, g)
    assert torch.equal(labels[pos], labels[idx]) and not (pos == idx).any()
    alone = DatasetPositives(torch.tensor([0, 1, 1, 2]))
    assert alone(torch.tensor([0, 1, 3]), g).tolist() == [0, 2, 3]  # a single-image class: itself
    classmates = {int(draw(torch.tensor([0]), g)) for _ in range(200)}
    assert classmates == set(range(40, 400, 40))  # every other image of the class, never the anchor

    # in the loop: images that carry their own index show which rows the positives are
    n = 400
    images = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    cfg = AsymmetricConfig(segments=(8,), batch_size=8, terms=("esrl",), positives="dataset")
    sample = torch.randperm(n, generator=g)[:64]
    plan = sample[torch.randperm(64, generator=g)].split(cfg.batch_size)
    outside = 0
    for idx, x, x_pos in InMemory(images).batches(plan, g, draw):
        anchors, positives = x[:, 0, 0, 0].long(), x_pos[:, 0, 0, 0].long()
        assert torch.equal(anchors, idx)
        assert torch.equal(labels[positives], labels[anchors]) and not (positives == anchors).any()
        outside += int((~torch.isin(positives, anchors)).sum())
    assert outside > 0.9 * 64


def test_paper_schedule_steps_inside_a_short_run():
    assert paper_schedule(12).milestones == (20, 30) and paper_schedule((12, 48)).iterations == 60
    assert paper_milestones((12, 24), 4) == (2, 3)  # 20/40 and 30/40 of a 4-iteration run
    assert paper_milestones((48,), 60) == (30, 45, 55)
    assert [lr_at("paper", 1.0, t, (2, 3)) for t in range(5)] == [1.0, 1.0, 0.1, pytest.approx(0.01), pytest.approx(0.01)]
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(48) % 4
    images = torch.randn(48, 3, 8, 8, generator=g)
    torch.manual_seed(0)
    cfg = AsymmetricConfig(segments=(8,), iterations=4, samples=8, batch_size=8, lr=0.01, schedule="paper",
                           milestones=paper_milestones((8,), 4))
    _, hist = train_asymmetric(HashingModel(build_backbone("minires"), 8), images, labels, cfg, progress=False)
    assert hist.lr == pytest.approx([0.01, 0.01, 0.001, 0.0001])


def test_bad_options():
    with pytest.raises(ValueError, match="positives"):
        train_asymmetric(HashingModel(build_backbone("minires"), 8), torch.randn(8, 3, 8, 8), torch.zeros(8),
                         AsymmetricConfig(segments=(8,), positives="anywhere"), progress=False)
    with pytest.raises(ValueError, match="workers"):
        TrainLoader(torch.utils.data.TensorDataset(torch.randn(4, 3, 8, 8)), 8, workers=-1)
    assert isinstance(AsymmetricHistory().lr, list)


def test_every_batch_source_reads_the_same_plan():
    """A tensor and a Dataset of its rows give the same augmented batches from the same generator;
    through DataLoader workers, those of the generator past the worker seed torch draws first."""
    images, labels = torch.randn(12, 3, 8, 8), torch.arange(12) % 3
    ds = torch.utils.data.TensorDataset(images, labels)
    plan = [torch.tensor([3, 1, 4]), torch.tensor([0, 5, 9])]

    def read(source, skip=False):
        g = torch.Generator().manual_seed(7)
        if skip:  # the worker seed a DataLoader draws from the run's generator
            torch.empty((), dtype=torch.int64).random_(generator=g)
        return [(idx, x) for idx, x, _ in source.batches(iter(plan), g)]

    flips = torch.rand(6, generator=torch.Generator().manual_seed(7)) < 0.5
    rows = images[torch.cat(plan)]
    assert torch.equal(torch.cat([x for _, x in read(InMemory(images))]), torch.where(flips[:, None, None, None], rows.flip(3), rows))
    for shift in (0.0, 0.25):
        for source, skip in [(InMemory(ds, max_shift=shift), False), (Decoded(ds, max_shift=shift), True),
                             (batch_source(ds, max_shift=shift, decode="workers"), True)]:
            expected, got = read(InMemory(images, max_shift=shift), skip), read(source)
            assert len(got) == 2 and all(torch.equal(i, j) and torch.equal(a, b) for (i, a), (j, b) in zip(expected, got))
