"""The Ray paths on one local Ray instance (2 CPUs, started once): the sharded index against
HammingIndex, and encoding a folder against encoding in this process."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fgh_tutorial.retrieval.codes import load_codes, pack_codes
from fgh_tutorial.retrieval.hamming import hamming_topk
from fgh_tutorial.retrieval.index import HammingIndex
from fgh_tutorial.retrieval.sharded import Shard, ShardedIndex, fill, merge_topk

ray = pytest.importorskip("ray", reason="Ray is the 'scale' extra")


@pytest.fixture(scope="module")
def local_ray():
    for attempt in range(2):  # a busy machine can miss Ray's start-up deadlines once
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt:
                raise
    yield ray
    ray.shutdown()


def tied_codes(rng, n, bits):
    """Random codes with many ties: few bits vary, and a third of the rows repeat others."""
    codes = np.where(rng.random((n, bits)) < 0.5, -1, 1).astype(np.int8)
    codes[:, 6:] = 1  # distances only in 0..6 (plus padding bits when bits > 64)
    repeat = rng.choice(n, n // 3)
    codes[repeat] = codes[rng.choice(n, n // 3)]
    return codes


# ---------------------------------------------------------------- merge and balance (no Ray)
@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(1, 5), st.integers(1, 250), st.integers(0, 2**31))
def test_merging_shard_lists_equals_one_scan(n, shards, k, seed):
    rng = np.random.default_rng(seed)
    db = pack_codes(tied_codes(rng, n, 9))
    q = pack_codes(tied_codes(rng, 7, 9))
    cuts = np.sort(rng.choice(np.arange(1, n), min(shards - 1, n - 1), replace=False)) if n > 1 else []
    parts = []
    for lo, hi in zip([0, *cuts], [*cuts, n]):
        d, i = hamming_topk(q, db[lo:hi], k)
        parts.append((d, i + lo))
    dist, ids = merge_topk(parts, k, n)
    ref_d, ref_i = hamming_topk(q, db, k)
    assert np.array_equal(dist, ref_d) and np.array_equal(ids, ref_i)
    assert dist.dtype == ref_d.dtype and ids.dtype == ref_i.dtype


@given(st.lists(st.integers(0, 50), min_size=1, max_size=6), st.integers(0, 200))
def test_new_codes_go_to_the_smaller_shards(sizes, n):
    take = fill(sizes, n)
    after = np.asarray(sizes) + take
    assert take.sum() == n and (take >= 0).all()
    assert after.max() - after.min() <= max(1, max(sizes) - min(sizes))


def test_a_shard_with_torch_answers_as_the_compiled_kernel():
    rng = np.random.default_rng(5)
    db, q = pack_codes(tied_codes(rng, 300, 70)), pack_codes(tied_codes(rng, 9, 70))
    compiled, torch_ = Shard(70), Shard(70, use_torch=True)
    for shard in (compiled, torch_):
        shard.add(db[:100], 1000)
        shard.add(db[100:], 5000)
    for k in (1, 10, 300):
        d1, i1 = compiled.search(q, k)
        d2, i2 = torch_.search(q, k)
        ref_d, ref_i = hamming_topk(q, db, k)
        assert np.array_equal(d1, ref_d) and np.array_equal(d2, ref_d) and np.array_equal(i1, i2)
        assert np.array_equal(i1, np.where(ref_i < 100, ref_i + 1000, ref_i - 100 + 5000))


# ---------------------------------------------------------------- the sharded index on Ray
@pytest.mark.slow  # a local Ray instance
@pytest.mark.parametrize("bits, shards", [(9, 3), (70, 2)])
def test_sharded_index_equals_hamming_index(local_ray, bits, shards):
    rng = np.random.default_rng(bits)
    sharded, single = ShardedIndex(bits, shards=shards), HammingIndex(bits)
    for n in (2, 150, 61):  # three adds (with 3 shards, the first leaves one empty)
        codes = tied_codes(rng, n, bits)
        sharded.add(codes)
        single.add(codes)
        for seed in range(3):
            q = tied_codes(np.random.default_rng(seed), 5, bits)
            for k in (1, 10, single.ntotal, single.ntotal + 5):
                d, i = sharded.search(q, k)
                ref_d, ref_i = single.search(q, k)
                assert np.array_equal(d, ref_d) and np.array_equal(i, ref_i), (n, seed, k)
    assert sharded.ntotal == single.ntotal == 213 and sharded.sizes.max() - sharded.sizes.min() <= 1
    with pytest.raises(ValueError, match="k must be a positive integer"):
        sharded.search(q, 0)
    with pytest.raises(ValueError, match="queries"):
        sharded.search(np.ones((2, bits + 1), np.int8), 3)
    sharded.close()


@pytest.mark.slow  # a local Ray instance
def test_sharded_index_saves_and_loads(local_ray, tmp_path):
    rng = np.random.default_rng(1)
    codes, q = tied_codes(rng, 120, 24), tied_codes(rng, 6, 24)
    single = HammingIndex(24).add(codes)
    sharded = ShardedIndex(24, shards=2).add(codes[:50]).add(codes[50:])
    sharded.save(tmp_path / "db.npz")
    sharded.save(tmp_path / "db")
    assert np.array_equal(HammingIndex.load(tmp_path / "db.npz").words, single.words)
    assert json.loads((tmp_path / "db" / "index.json").read_text())["ntotal"] == 120
    ref = single.search(q, 40)
    for loaded in (ShardedIndex.load(tmp_path / "db"), ShardedIndex.load(tmp_path / "db.npz", shards=1)):
        assert all(np.array_equal(a, b) for a, b in zip(loaded.search(q, 40), ref))
        loaded.close()
    with pytest.raises(FileNotFoundError, match="index.json"):
        ShardedIndex.load(tmp_path)
    sharded.close()


def test_sharded_index_checks_k_its_state_and_reports_shard_errors_in_one_line(local_ray, tmp_path):
    import time

    from fgh_tutorial.errors import BadFile, BadOption, Timeout
    from fgh_tutorial.retrieval.codes import save_codes
    from fgh_tutorial.retrieval.ray_cluster import gather

    codes = tied_codes(np.random.default_rng(3), 20, 12)
    index = ShardedIndex(12, shards=2).add(codes)
    for k in (2.5, 0, True):
        with pytest.raises(BadOption, match="k must be a positive integer"):
            index.search(codes[:2], k)
    index.close()
    for call in (lambda: index.add(codes), lambda: index.search(codes[:2], 3), lambda: index.save(tmp_path / "x")):
        with pytest.raises(BadOption, match="closed"):
            call()
    assert "closed" in repr(index)
    folder = tmp_path / "db"
    folder.mkdir()
    save_codes(folder / "shard-00000.npz", pack_codes(codes[:3]), 12, ids=np.array([0, 2, 1]))  # ids out of order
    (folder / "index.json").write_text(json.dumps({"bits": 12, "ntotal": 3, "files": ["shard-00000.npz"]}))
    with pytest.raises(BadFile) as err:  # raised in the shard's actor, arrives as the shard raised it
        ShardedIndex.load(folder)
    assert str(err.value).endswith("shard-00000.npz: a shard file needs 'ids', one per code, increasing")
    assert "Traceback" not in str(err.value) and len(str(err.value).splitlines()) == 1
    with pytest.raises(BadOption, match="needs 3 CPUs"):  # a shard per core, more shards than cores
        ShardedIndex(12, shards=3, cpus_per_shard=1)

    @local_ray.remote
    def slow():
        time.sleep(30)

    start = time.perf_counter()
    with pytest.raises(Timeout, match="no answer within 0.5 s"):
        gather(local_ray, slow.remote(), "waiting", timeout=0.5)
    assert time.perf_counter() - start < 10


# ---------------------------------------------------------------- encoding a folder
@pytest.fixture(scope="module")
def run(tmp_path_factory, small_profile_module):
    """A finished run of the command line on a small profile (seconds)."""
    from fgh_tutorial.cli import main

    small_profile_module(image_size=64)
    out = tmp_path_factory.mktemp("run") / "adsh16"
    assert main(["train", "--bits", "16", "--out", str(out), "--iterations", "1", "--samples", "64"]) == 0
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """23 small images in nested folders, of several sizes and formats."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(23):
        where = root / ("a" if i % 3 else "b/c")
        where.mkdir(parents=True, exist_ok=True)
        size = (40 + i, 30 + 2 * i)
        Image.fromarray(rng.integers(0, 256, (*size[::-1], 3), dtype=np.uint8)).save(where / f"{i:02d}.{'png' if i % 4 else 'jpg'}")
    (root / "notes.txt").write_text("not an image")
    return root


@pytest.mark.slow  # a local Ray instance
def test_ray_encoding_equals_local_encoding(local_ray, run, folder, tmp_path):
    from fgh_tutorial.data import default_transform
    from fgh_tutorial.data.real import ImageList
    from fgh_tutorial.runs.encoding import encode_folder, image_paths
    from fgh_tutorial.models.encode import encode
    from fgh_tutorial.runs.folder import load_run

    here = encode_folder(run, folder, tmp_path / "here", batch_size=4, shard_size=8, ray=False, progress=False)
    spread = encode_folder(run, folder, tmp_path / "ray.npz", batch_size=4, shard_size=8, workers=2, progress=False)
    words, bits, extra = load_codes(here)
    assert bits == 16 and len(words) == 23 and np.array_equal(extra["ids"], np.arange(23))
    assert np.array_equal(load_codes(spread)[0], words)
    _, model, prof = load_run(run)  # and both are one in-order pass of the network at this batch size
    files = [folder / p for p in image_paths(folder)]
    assert np.array_equal(pack_codes(encode(model, ImageList([(f, 0) for f in files], [""], default_transform(prof.image_size)), 4)), words)
    listing = json.loads((tmp_path / "ray.paths.json").read_text())
    assert listing["paths"] == [p.relative_to(folder).as_posix() for p in files] and listing["paths"][0] == "a/01.png"
    assert not (tmp_path / "ray.parts").exists()


@pytest.mark.slow  # a local Ray instance
def test_encoding_resumes_by_shard(local_ray, run, folder, tmp_path, monkeypatch):
    import fgh_tutorial.runs.encoding as ef

    full = ef.encode_folder(run, folder, tmp_path / "full.npz", batch_size=4, shard_size=8, ray=False, progress=False)
    calls = []
    real = ef.encode_paths

    def failing(model, paths, *args):
        calls.append(len(paths))
        if len(calls) == 2:
            raise KeyboardInterrupt  # the machine goes down after the first shard
        return real(model, paths, *args)

    monkeypatch.setattr(ef, "encode_paths", failing)
    with pytest.raises(KeyboardInterrupt):
        ef.encode_folder(run, folder, tmp_path / "again.npz", batch_size=4, shard_size=8, ray=False, progress=False)
    assert len(list((tmp_path / "again.parts").glob("*.npz"))) == 1
    calls.clear()
    monkeypatch.setattr(ef, "encode_paths", lambda model, paths, *args: calls.append(len(paths)) or real(model, paths, *args))
    resumed = ef.encode_folder(run, folder, tmp_path / "again.npz", batch_size=4, shard_size=8, ray=False, progress=False)
    assert calls == [8, 7]  # shards 2 and 3 of 8, 8, 7 images; the finished one is not encoded again
    assert np.array_equal(load_codes(resumed)[0], load_codes(full)[0])


def test_workers_ray_cannot_place_are_refused_at_once(local_ray, run, folder, tmp_path):
    from fgh_tutorial.runs.encoding import encode_folder
    from fgh_tutorial.errors import BadOption

    with pytest.raises(BadOption, match="--workers 8 needs 8 CPUs .* has 2: use --workers 2 or fewer"):
        encode_folder(run, folder, tmp_path / "c.npz", batch_size=4, shard_size=8, workers=8, progress=False)
    assert not (tmp_path / "c.npz").exists() and not (tmp_path / "c.parts").exists()


@pytest.mark.slow  # trains a run first
def test_encode_command_and_its_errors(run, folder, tmp_path, capsys):
    from fgh_tutorial.cli import main

    assert main(["encode", "--run", str(run), "--data", str(folder), "--out", str(tmp_path / "c.npz"), "--no-ray",
                 "--batch-size", "8"]) == 0
    assert "23 images" in capsys.readouterr().out
    assert main(["encode", "--run", str(run), "--data", str(tmp_path / "none"), "--out", str(tmp_path / "d"), "--no-ray"]) == 2
    assert "does not exist" in capsys.readouterr().err
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    try:
        assert main(["encode", "--run", str(run), "--data", str(folder), "--out", str(tmp_path / "e"), "--no-ray"]) == 2
        assert "broken.jpg" in capsys.readouterr().err
    finally:
        (folder / "broken.jpg").unlink()
