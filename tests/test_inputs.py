"""The public API checks its inputs: label shapes, code widths, bit counts and padding on load,
k, empty inputs, device names; and a dataset download is not unpacked twice."""
import hashlib
import io
import tarfile

import numpy as np
import pytest
import torch

from fgh_tutorial.data.download import download_and_extract, extracted_marker
from fgh_tutorial.models.device import check_device
from fgh_tutorial.retrieval.codes import WORD_BITS, load_codes, pack_codes, save_codes
from fgh_tutorial.retrieval.index import HammingIndex
from fgh_tutorial.retrieval.metrics import mean_average_precision, precision_at_k


def _codes(rng, n, bits):
    return np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8)


def test_column_labels_are_class_ids_not_multi_hot():
    rng = np.random.default_rng(0)
    q, db = _codes(rng, 20, 16), _codes(rng, 60, 16)
    ql, dl = rng.integers(0, 5, 20), rng.integers(0, 5, 60)
    flat = mean_average_precision(q, db, ql, dl)
    assert mean_average_precision(q, db, ql[:, None], dl[:, None]) == flat
    assert mean_average_precision(q, db, torch.as_tensor(ql)[:, None], dl) == flat
    assert precision_at_k(q, db, ql[:, None], dl[:, None], 5) == precision_at_k(q, db, ql, dl, 5)
    with pytest.raises(TypeError, match="query_labels: multi-hot rows must be 0/1 numbers"):
        mean_average_precision(q, db, np.array([["a", "b"]] * 20), np.ones((60, 2)))
    with pytest.raises(ValueError, match="db_labels holds NaN"):
        mean_average_precision(q, db, ql, np.full(60, np.nan))


def test_codes_k_and_empty_inputs():
    rng = np.random.default_rng(1)
    q, db, y = _codes(rng, 4, 12), _codes(rng, 10, 12), np.arange(10) % 3
    with pytest.raises(ValueError, match="query_codes is empty"):
        mean_average_precision(q[:0], db, y[:0], y)
    with pytest.raises(ValueError, match="db_codes is empty"):
        mean_average_precision(q, db[:0], y[:4], y[:0])
    with pytest.raises(ValueError, match="query codes have 12 bits, database codes 8"):
        mean_average_precision(q, db[:, :8], y[:4], y)
    for k in (0, -1):
        with pytest.raises(ValueError, match="k must be"):
            precision_at_k(q, db, y[:4], y, k)
    with pytest.raises(TypeError, match="k must be an integer"):
        precision_at_k(q, db, y[:4], y, 2.5)
    index = HammingIndex(12).add(db)
    for k in (0, 1.5, True, "3"):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(q, k)
    assert index.search(q, np.int64(3))[1].shape == (4, 3)
    with pytest.raises(ValueError, match=r"codes must be \(n x 12\)"):
        index.add(db[:, :10])


def test_padding_bits_never_count_and_load_checks_widths(tmp_path):
    rng = np.random.default_rng(2)
    db = _codes(rng, 5, 12)
    words = pack_codes(db)
    dirty = words.copy()
    dirty[0, 0] |= np.uint64(1) << np.uint64(40)  # a padding bit of a 12-bit code
    with pytest.raises(ValueError, match="padding bits above bit 12 are set"):
        HammingIndex(12).add(dirty)
    with pytest.raises(ValueError, match="12-bit codes take 1 words, got 2"):
        HammingIndex(12).add(np.concatenate([words, words], 1))
    # files written by hand with a wrong bit count, a wrong width, set padding, or another dtype
    np.savez(tmp_path / "bits.npz", words=words, bits=np.int64(70))
    np.savez(tmp_path / "pad.npz", words=dirty, bits=np.int64(12))
    np.savez(tmp_path / "dtype.npz", words=words.astype(np.int64), bits=np.int64(12))
    for name, message in (("bits", "70-bit codes take 2 words, got 1"), ("pad", "padding bits above bit 12"),
                          ("dtype", "must be uint64 words")):
        with pytest.raises(ValueError, match=message):
            HammingIndex.load(tmp_path / f"{name}.npz")
    save_codes(tmp_path / "ok.npz", words, 12)
    with pytest.raises(ValueError, match="holds 12-bit codes, expected 16"):
        load_codes(tmp_path / "ok.npz", bits=16)
    assert HammingIndex.load(tmp_path / "ok.npz").search(db[:1], 1)[0][0, 0] == 0
    assert WORD_BITS == 64


def test_device_names_are_checked():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("gpu", "cuda:x", ""):
        with pytest.raises(ValueError, match="device .* is not a device name"):
            check_device(bad)
    with pytest.raises(ValueError, match="is not supported here"):
        check_device("meta")
    with pytest.raises(TypeError, match="device must be a device name"):
        check_device(0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="needs a CUDA GPU, but torch sees none here"):
            check_device("cuda:1")
    from fgh_tutorial.models.backbones import minires
    from fgh_tutorial.models.encode import encode
    from fgh_tutorial.models.heads import HashingModel

    with pytest.raises(ValueError, match="device 'tpu' is not a device name"):
        encode(HashingModel(minires(), 8), torch.zeros(1, 3, 16, 16), device="tpu")


def test_training_rejects_multi_hot_and_reads_a_column_as_class_ids():
    from fgh_tutorial.models.backbones import minires
    from fgh_tutorial.models.heads import HashingModel
    from fgh_tutorial.training.asymmetric import AsymmetricConfig, train_asymmetric

    x = torch.randn(8, 3, 16, 16)
    cfg = AsymmetricConfig(segments=(8,), iterations=1, samples=8, batch_size=4)
    with pytest.raises(ValueError, match=r"labels must be the class ids \(n,\)"):
        train_asymmetric(HashingModel(minires(), 8), x, torch.eye(4)[torch.arange(8) % 4], cfg, progress=False)
    torch.manual_seed(0)
    V1, _ = train_asymmetric(HashingModel(minires(), 8), x, torch.arange(8)[:, None] % 4, cfg, progress=False)
    torch.manual_seed(0)
    V2, _ = train_asymmetric(HashingModel(minires(), 8), x, torch.arange(8) % 4, cfg, progress=False)
    assert torch.equal(V1, V2)


def test_download_is_not_unpacked_twice(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        info = tarfile.TarInfo("data/labels.txt")
        info.size = 5
        t.addfile(info, io.BytesIO(b"hello"))
    (src / "d.tgz").write_bytes(buf.getvalue())
    md5 = hashlib.md5(buf.getvalue()).hexdigest()
    root = tmp_path / "root"
    url = (src / "d.tgz").as_uri()
    download_and_extract(url, root, "d.tgz", md5, progress=False)
    assert (root / "data" / "labels.txt").read_text() == "hello" and extracted_marker(root, "d.tgz").is_file()
    (root / "data" / "labels.txt").write_text("edited by the user")
    (root / "d.tgz").unlink()  # the archive deleted to save space
    (src / "d.tgz").unlink()  # and no longer downloadable
    download_and_extract(url, root, "d.tgz", md5, progress=False)
    assert (root / "data" / "labels.txt").read_text() == "edited by the user"
