"""Real-dataset loaders on tiny fake layouts, and downloads against a loopback server."""
import functools
import hashlib
import http.server
import io
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from fgh_tutorial.data import DatasetNotFound, load_dataset
from fgh_tutorial.data.download import ChecksumError, DownloadError, download, download_and_extract
from fgh_tutorial.errors import BadFile
from fgh_tutorial.data.images import BadImageError


def jpg(path, colour=(200, 30, 30)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)


def fake_caltech(root, n_classes=3, per_class=4, class_ids=None):
    class_ids = class_ids or list(range(1, n_classes + 1))
    images, labels, split, classes = [], [], [], []
    i = 1
    for c in class_ids:
        classes.append(f"{c} {c:03d}.Bird_{c}")
        for k in range(per_class):
            rel = f"{c:03d}.Bird_{c}/img_{k}.jpg"
            jpg(root / "images" / rel)
            images.append(f"{i} {rel}")
            labels.append(f"{i} {c}")
            split.append(f"{i} {1 if k % 2 == 0 else 0}")
            i += 1
    for name, rows in [("images.txt", images), ("image_class_labels.txt", labels),
                       ("train_test_split.txt", split), ("classes.txt", classes)]:
        (root / name).write_text("\n".join(rows) + "\n")
    (root / "bounding_boxes.txt").write_text("\n".join(f"{j} 1 2 3 4" for j in range(1, i)) + "\n")
    (root / "parts").mkdir()
    (root / "parts" / "part_locs.txt").write_text("1 1 5.0 6.0 1\n1 2 0 0 0\n")


def test_cub_layout(tmp_path):
    fake_caltech(tmp_path / "CUB_200_2011")
    train, test = load_dataset("cub", tmp_path, "train"), load_dataset("cub", tmp_path, "test")
    assert len(train) == 6 and len(test) == 6
    assert sorted(set(train.targets)) == [0, 1, 2] and train.classes[0] == "001.Bird_1"
    image, label = train[0]
    assert image.size == (8, 8) and label == 0
    assert train.boxes["1"] == (1.0, 2.0, 3.0, 4.0) and train.parts == {"1": {1: (5.0, 6.0)}}


def test_nabirds_noncontiguous_ids(tmp_path):
    fake_caltech(tmp_path, class_ids=[5, 17, 300])
    ds = load_dataset("nabirds", tmp_path, "test")
    assert sorted(set(ds.targets)) == [0, 1, 2]


def test_missing_files_say_what_to_put_where(tmp_path):
    with pytest.raises(DatasetNotFound, match="images.txt.*download=True"):
        load_dataset("cub", tmp_path)
    fake_caltech(tmp_path)
    (tmp_path / "images" / "001.Bird_1" / "img_0.jpg").unlink()
    with pytest.raises(DatasetNotFound, match="missing .*img_0.jpg"):
        load_dataset("cub", tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        load_dataset("cub", tmp_path, "val")
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("imagenet", tmp_path)


def test_corrupt_image_is_named(tmp_path):
    fake_caltech(tmp_path)
    ds = load_dataset("cub", tmp_path)
    ds.samples[1][0].write_bytes(b"not a jpeg")
    assert ds.verify_images(progress=False) == [ds.samples[1][0]]
    with pytest.raises(BadImageError, match="img_.*cannot decode image"):
        ds[1]


def test_vegfru_and_dogs(tmp_path):
    from scipy.io import savemat

    for split, rows in [("train", ["veg200_images/a/1.jpg 0", "fru92_images/b/2.jpg 1"]),
                        ("test", ["veg200_images/a/3.jpg 0"])]:
        (tmp_path / "vegfru_list").mkdir(exist_ok=True)
        (tmp_path / "vegfru_list" / f"vegfru_{split}.txt").write_text("\n".join(rows))
        for r in rows:
            jpg(tmp_path / r.split()[0])
    assert list(load_dataset("vegfru", tmp_path, "train").targets) == [0, 1]

    files = ["n0001-Chihuahua/a.jpg", "n0002-Beagle/b.jpg"]
    for f in files:
        jpg(tmp_path / "Images" / f)
    obj = np.empty((2, 1), dtype=object)
    obj[0, 0], obj[1, 0] = np.array([files[0]]), np.array([files[1]])
    savemat(tmp_path / "train_list.mat", {"file_list": obj, "labels": np.array([[1], [2]])})
    dogs = load_dataset("dogs", tmp_path, "train")
    assert dogs.classes == ["Chihuahua", "Beagle"] and list(dogs.targets) == [0, 1]


def test_user_folder_both_layouts(tmp_path):
    for split in ("train", "test"):
        for c in ("owl", "wren"):
            for k in range(2):
                jpg(tmp_path / "a" / split / c / f"{k}.png")
    ds = load_dataset("folder", tmp_path / "a", "test")
    assert ds.classes == ["owl", "wren"] and len(ds) == 4
    for c in ("owl", "wren"):
        for k in range(10):
            jpg(tmp_path / "b" / c / f"{k}.jpg")
    train = load_dataset("folder", tmp_path / "b", "train", seed=1)
    test = load_dataset("folder", tmp_path / "b", "test", seed=1)
    assert len(train) == 14 and len(test) == 6
    assert not {p for p, _ in train.samples} & {p for p, _ in test.samples}
    assert [p for p, _ in test.samples] == [p for p, _ in load_dataset("folder", tmp_path / "b", "test", seed=1).samples]
    with pytest.raises(DatasetNotFound, match="no class folders"):
        load_dataset("folder", tmp_path / "a" / "train" / "owl")


@pytest.fixture
def server(tmp_path):
    serve = tmp_path / "www"
    serve.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(serve))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield serve, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def make_tgz(path, files):
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def test_download_verifies_and_extracts(server, tmp_path):
    serve, url = server
    make_tgz(serve / "x.tgz", {"CUB_200_2011/README": b"hello"})
    md5 = hashlib.md5((serve / "x.tgz").read_bytes()).hexdigest()
    root = tmp_path / "data"
    download_and_extract(f"{url}/x.tgz", root, "x.tgz", md5, progress=False)
    assert (root / "CUB_200_2011" / "README").read_text() == "hello"
    # a second call finds the verified file and does not fetch again
    (serve / "x.tgz").unlink()
    download(f"{url}/x.tgz", root / "x.tgz", md5, progress=False)


def test_download_rejects_bad_checksum_and_missing_url(server, tmp_path):
    serve, url = server
    (serve / "f.bin").write_bytes(b"abc")
    with pytest.raises(ChecksumError, match="md5 is"):
        download(f"{url}/f.bin", tmp_path / "f.bin", "0" * 32, progress=False)
    assert not (tmp_path / "f.bin").exists() and not list(tmp_path.glob(".*"))  # no temporary file left
    with pytest.raises(DownloadError, match="could not download .*by hand"):
        download(f"{url}/nothing.bin", tmp_path / "n.bin", progress=False)
    assert not (tmp_path / "n.bin").exists() and not list(tmp_path.glob(".*"))


def test_cub_download_path_against_loopback(server, tmp_path, monkeypatch):
    from fgh_tutorial.data import real

    serve, url = server
    src = tmp_path / "src"
    fake_caltech(src / "CUB_200_2011")
    with tarfile.open(serve / "CUB_200_2011.tgz", "w:gz") as t:
        t.add(src / "CUB_200_2011", arcname="CUB_200_2011")
    monkeypatch.setattr(real, "CUB_URL", f"{url}/CUB_200_2011.tgz")
    monkeypatch.setattr(real, "CUB_MD5", hashlib.md5((serve / "CUB_200_2011.tgz").read_bytes()).hexdigest())
    ds = real.cub200(tmp_path / "cub", "train", download=True)
    assert len(ds) == 6


def test_extract_refuses_escaping_paths(tmp_path):
    from fgh_tutorial.data.download import extract

    make_tgz(tmp_path / "evil.tgz", {"../escape.txt": b"x"})
    with pytest.raises(BadFile, match="outside"):
        extract(tmp_path / "evil.tgz", tmp_path / "out")


@pytest.mark.slow
def test_course_splits_on_a_real_layout_train_from_datasets(tmp_path):
    """The gpu profile's data path (a real dataset as Datasets) at CPU scale: splits, training
    from a DataLoader, and encoding."""

    from fgh_tutorial.data import course_splits
    from fgh_tutorial.models.encode import encode
    from fgh_tutorial.training.profiles import get_profile
    from fgh_tutorial.training import build_model, train_hashing

    fake_caltech(tmp_path / "CUB_200_2011", n_classes=3, per_class=8)
    profile = get_profile("gpu", data_root=str(tmp_path), image_size=32, backbone="minires", pretrained=False,
                          device="cpu", val_fraction=0.25)
    splits = course_splits(profile)
    (train, train_y), (val, val_y), (test, _) = splits["train"], splits["val"], splits["test"]
    assert len(train) + len(val) == 12 and len(test) == 12 and len(val) == 3
    assert not set(train.indices) & set(val.indices)
    model = build_model(profile, 8)
    hist = train_hashing(model, train, train_y, epochs=2, batch_size=4, val=(val, val_y), progress=False)
    assert len(hist.loss) == 2 and len(hist.val_map) == 1
    assert encode(model, test).shape == (12, 8)
    with pytest.raises(DatasetNotFound, match="FGH_DATA"):
        course_splits(get_profile("gpu", data_root=None))


def test_aircraft_and_food101_through_torchvision(tmp_path):
    import json

    data = tmp_path / "fgvc-aircraft-2013b" / "data"
    (data / "images").mkdir(parents=True)
    (data / "variants.txt").write_text("707-320\nA300B4\n")
    (data / "images_variant_trainval.txt").write_text("0001 707-320\n0002 A300B4\n")
    (data / "images_variant_test.txt").write_text("0003 A300B4\n")
    for i in ("0001", "0002", "0003"):
        jpg(data / "images" / f"{i}.jpg")
    air = load_dataset("aircraft", tmp_path, "train")
    assert len(air) == 2 and list(air.targets) == [0, 1]
    assert len(load_dataset("aircraft", tmp_path, "test")) == 1

    food = tmp_path / "food-101"
    (food / "meta").mkdir(parents=True)
    (food / "meta" / "train.json").write_text(json.dumps({"pho": ["pho/1"], "ramen": ["ramen/2", "ramen/3"]}))
    (food / "meta" / "test.json").write_text(json.dumps({"pho": ["pho/4"], "ramen": ["ramen/5"]}))
    for rel in ("pho/1", "ramen/2", "ramen/3", "pho/4"):
        jpg(food / "images" / f"{rel}.jpg")
    train = load_dataset("food101", tmp_path, "train")
    assert len(train) == 3 and train.classes == ["pho", "ramen"]
    with pytest.raises(DatasetNotFound, match="missing .*ramen/5.jpg"):
        load_dataset("food101", tmp_path, "test")
    with pytest.raises(DatasetNotFound, match="Food-101.*download=True"):
        load_dataset("food101", tmp_path / "nowhere", "test")


def test_explorer_over_a_real_layout(tmp_path):
    """The explorer's images come from the dataset's files for a real dataset (the gpu profile),
    and a saved bundle finds them again through data_root."""
    from fgh_tutorial.data import course_splits
    from fgh_tutorial.models.encode import encode
    from fgh_tutorial.app.bundle import Bundle, load_bundle
    from fgh_tutorial.app.explorer import TrainedSystem
    from fgh_tutorial.training.profiles import get_profile
    from fgh_tutorial.training import build_model
    from fgh_tutorial.app.widgets import RetrievalExplorer

    fake_caltech(tmp_path / "CUB_200_2011", n_classes=3, per_class=8)
    profile = get_profile("gpu", data_root=str(tmp_path), image_size=32, backbone="minires", pretrained=False,
                          device="cpu", val_fraction=0.25)
    splits = course_splits(profile)
    model = build_model(profile, 8).eval()
    system = TrainedSystem("mine", model, encode(model, splits["train"][0]), (8,))
    bundle = Bundle(profile, {"mine": system}, splits["train"][1].numpy(), splits["test"][1].numpy())
    assert bundle.images("train", [0, 3]).shape == (2, 32, 32, 3)
    back = load_bundle(bundle.save(tmp_path / "mine.pt"), data_root=str(tmp_path))
    ex = RetrievalExplorer(back, index=5)
    assert len(ex.last_hit.ids) == 9 and ex.last_hit.query_label == int(splits["test"][1][5])  # 9 database images
    assert back.images("test", [5]).shape == (1, 32, 32, 3)
    assert back.class_names() == ["001.Bird_1", "002.Bird_2", "003.Bird_3"]
    assert "002.Bird_2" in ex.summary.value or "001.Bird_1" in ex.summary.value
