"""SynthBirds: determinism, protocol, masks and error messages."""
import numpy as np
import pytest
import torch

from fgh_tutorial.data import MASK_NAMES, NUM_CLASSES, SynthBirds, default_transform
from fgh_tutorial.data.synthetic import ATTRIBUTES, attribute_differences, class_name, render


def test_classes_cover_every_combination_of_four_parts():
    assert len(ATTRIBUTES) >= 4 and NUM_CLASSES >= 50
    names = {class_name(c) for c in range(NUM_CLASSES)}
    assert len(names) == NUM_CLASSES
    # every class has a neighbour that differs in exactly one part, for each part
    for part in ATTRIBUTES:
        assert any(attribute_differences(0, b) == [part] for b in range(NUM_CLASSES))


def test_deterministic_and_split_independent():
    a = SynthBirds("train", per_class=1, seed=3)
    b = SynthBirds("train", per_class=1, seed=3)
    for i in (0, 7, 53):
        np.testing.assert_array_equal(a.render(i)[0], b.render(i)[0])
    assert not np.array_equal(a.render(0)[0], SynthBirds("test", per_class=1, seed=3).render(0)[0])
    assert not np.array_equal(a.render(0)[0], SynthBirds("train", per_class=1, seed=4).render(0)[0])


def test_protocol_sizes_and_balance():
    db, q = SynthBirds("train", per_class=3), SynthBirds("test", per_class=2)
    assert len(db) == 3 * NUM_CLASSES and len(q) == 2 * NUM_CLASSES
    assert np.bincount(db.targets).tolist() == [3] * NUM_CLASSES


@pytest.mark.parametrize("size", [32, 64, 224])
def test_masks_lie_on_the_bird(size):
    ds = SynthBirds("val", per_class=1, image_size=size, return_masks=True)
    x, y, masks = ds[5]
    assert x.shape == (3, size, size) and masks.shape == (len(MASK_NAMES), size, size)
    bird = masks[-1].bool()
    for k in range(len(MASK_NAMES) - 1):
        part = masks[k].bool()
        assert part.any(), MASK_NAMES[k]
        assert (part & bird).sum() >= 0.9 * part.sum()


def test_transform_and_tensors():
    ds = SynthBirds("test", per_class=1, image_size=64, transform=default_transform(48))
    x, y = ds[0]
    assert x.shape == (3, 48, 48) and x.dtype == torch.float32 and y == 0
    images, labels = SynthBirds("test", per_class=1, image_size=32).tensors()
    assert images.shape == (NUM_CLASSES, 3, 32, 32) and labels.tolist() == list(range(NUM_CLASSES))


def test_errors():
    with pytest.raises(ValueError, match="split must be one of"):
        SynthBirds("query")
    with pytest.raises(ValueError, match="per_class"):
        SynthBirds(per_class=0)
    with pytest.raises(IndexError, match="out of range"):
        SynthBirds(per_class=1)[NUM_CLASSES]
    with pytest.raises(ValueError, match="at least 16"):
        render(0, np.random.default_rng(0), size=8)


def test_redundant_cues_change_only_the_bird():
    plain, red = SynthBirds("train", per_class=1), SynthBirds("train", per_class=1, redundant=True)
    for i in (0, 13, 40):
        (a, masks), (b, masks_r) = plain.render(i), red.render(i)
        np.testing.assert_array_equal(masks, masks_r)
        changed = (a != b).any(-1)
        assert changed.sum() > 20  # the second cues are visible at 64 px
        bird = torch.nn.functional.max_pool2d(torch.from_numpy(masks[-1]).float()[None], 3, 1, 1)[0].numpy() > 0
        assert not (changed & ~bird).any()


def test_redundant_cue_follows_its_attribute():
    from fgh_tutorial.data.synthetic import CLASSES

    beak_only = next(b for b in range(NUM_CLASSES) if attribute_differences(0, b) == ["beak"])
    a, _ = render(0, np.random.default_rng(5), redundant=True)  # the same random stream: same pose and colours
    b, m = render(beak_only, np.random.default_rng(5), redundant=True)
    beak = m[0].astype(bool)
    assert CLASSES[0][1:] == CLASSES[beak_only][1:]
    assert ((a != b).any(-1) & ~beak).sum() > 5  # the rump band changes colour with the beak


def _drawn(ds):
    images = np.empty((len(ds), ds.image_size, ds.image_size, 3), np.uint8)
    masks = np.empty((len(ds), len(MASK_NAMES), ds.image_size, ds.image_size), np.uint8)
    for i in range(len(ds)):
        images[i], masks[i] = ds.render(i)
    return images, masks


def test_a_split_is_drawn_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FGH_CACHE", str(tmp_path))
    ds = SynthBirds("val", per_class=1, image_size=24, seed=2, redundant=True)
    images, labels, masks = ds.arrays()
    expected = _drawn(ds)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(masks, expected[1])
    assert ds.cache_path().parent == tmp_path and ds.cache_path().exists()

    def no_drawing(self, index):
        raise AssertionError("drawn again")

    monkeypatch.setattr(SynthBirds, "render", no_drawing)
    again = SynthBirds("val", per_class=1, image_size=24, seed=2, redundant=True).arrays()
    for a, b in zip(again, (images, labels, masks)):
        np.testing.assert_array_equal(a, b)
    assert again[0].dtype == np.uint8 and again[2].dtype == np.uint8
    # each argument the images depend on names another file
    others = [SynthBirds("val", 1, 24, 2), SynthBirds("val", 1, 24, 3, redundant=True),
              SynthBirds("val", 2, 24, 2, redundant=True), SynthBirds("val", 1, 32, 2, redundant=True),
              SynthBirds("test", 1, 24, 2, redundant=True)]
    assert len({ds.cache_path()} | {o.cache_path() for o in others}) == 6


def test_a_damaged_cache_file_is_drawn_again(tmp_path, monkeypatch):
    monkeypatch.setenv("FGH_CACHE", str(tmp_path))
    ds = SynthBirds("val", per_class=1, image_size=16)
    expected = _drawn(ds)
    n = len(ds)
    readable = [  # readable files of another shape or type
        {"images": np.zeros((2, 16, 16, 3), np.uint8), "masks": np.zeros((2, 5, 16, 2), np.uint8)},
        {"images": np.zeros((n, 16, 16, 3), np.uint8), "masks": np.zeros((n, 5, 16, 1), np.uint8)},  # masks cut short
        {"images": np.zeros((n, 16, 16, 3), np.float32), "masks": np.zeros((n, 5, 16, 2), np.uint8)},
    ]
    for damage in (b"", b"not a zip file", *readable):
        if isinstance(damage, dict):
            with open(ds.cache_path(), "wb") as f:
                np.savez(f, **damage)
        else:
            ds.cache_path().write_bytes(damage)
        images, _, masks = ds.arrays()
        np.testing.assert_array_equal(images, expected[0])
        np.testing.assert_array_equal(masks, expected[1])
        np.testing.assert_array_equal(ds.arrays()[0], expected[0])  # and written again


def test_no_cache_writes_nothing_and_a_read_only_cache_costs_only_the_drawing(tmp_path, monkeypatch):
    monkeypatch.setenv("FGH_CACHE", str(tmp_path / "cache"))
    ds = SynthBirds("val", per_class=1, image_size=16)
    images, _, _ = ds.arrays(cache=False)
    assert not (tmp_path / "cache").exists()
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    np.testing.assert_array_equal(ds.arrays()[0], images)
