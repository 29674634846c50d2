"""The retrieval explorer without a browser: the shipped bundle, one query's retrieval against
brute force, the pure renders (read back from their pixels), and the widget's wiring."""
import io
import re

import numpy as np
import pytest
import torch
from grid_pixels import expected_borders, tile_borders
from PIL import Image

from fgh_tutorial.app import viz
from fgh_tutorial.systems import COURSE_SYSTEMS, get_system
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.data import SynthBirds, course_splits
from fgh_tutorial.models.encode import encode
from fgh_tutorial.app.bundle import Bundle, default_bundle_path, load_bundle, system_map
from fgh_tutorial.app.explorer import Retrieval, TrainedSystem, explain, retrieve
from fgh_tutorial.retrieval.metrics import average_precisions
from fgh_tutorial.training.profiles import get_profile
from fgh_tutorial.app.widgets import RetrievalExplorer


@pytest.fixture(scope="module")
def shipped():
    return load_bundle()


@pytest.fixture(scope="module")
def tiny():
    """Two untrained systems on a small SynthBirds profile: one with two code lengths, one ExchNet."""
    torch.manual_seed(0)
    profile = get_profile("cpu", per_class=3, per_class_query=2, per_class_val=1)
    db = SynthBirds("train", 3, 64).tensors()
    systems = {}
    for name, system, lengths in (("two lengths", "adsh", (12, 24)), ("exchnet", "exchnet", (16,))):
        model = get_system(system).build(build_backbone("minires"), sum(lengths), 54).eval()
        systems[name] = TrainedSystem(name, model, encode(model, db[0]), lengths, system)
    return Bundle(profile, systems, db[1].numpy(), np.arange(2 * 54) % 54)


def test_shipped_bundle_is_small_and_complete(shipped):
    assert default_bundle_path().stat().st_size <= 5_000_000
    assert list(shipped.systems) == [get_system(n).label for n in COURSE_SYSTEMS]
    assert shipped.lengths == (12, 24, 32, 48)
    for system in shipped.systems.values():
        assert system.codes.shape == (60 * 54, 116) and set(np.unique(system.codes)) == {-1, 1}
        assert set(system.map) == {12, 24, 32, 48}
    assert np.array_equal(shipped.db_labels, np.arange(60 * 54) % 54)
    assert np.array_equal(shipped.query_labels, np.arange(10 * 54) % 54)


@pytest.mark.slow
def test_shipped_bundle_reproduces_its_own_scores(shipped):
    """The mAP stored in the bundle is what its weights and codes give on the query split."""
    (q_x, q_y), db_y = course_splits(shipped.profile)["test"], shipped.db_labels
    system = shipped.systems["ADSH"]
    measured = system_map(system, q_x, q_y, db_y)
    for bits in system.lengths:
        assert measured[bits] == pytest.approx(system.map[bits], abs=0.01)
    assert measured[48] > 5 * 0.021  # far above chance (1 / 48 of the database shares a class, tie-aware)


def test_save_and_load_round_trip(tiny, tmp_path):
    path = tiny.save(tmp_path / "b.pt")
    back = load_bundle(path)
    assert list(back.systems) == list(tiny.systems)
    x = tiny.query(3)
    for name, system in tiny.systems.items():
        again = back.systems[name]
        assert again.lengths == system.lengths and again.system == system.system
        assert np.array_equal(again.codes, system.codes)
        with torch.no_grad():  # weights are stored in float16
            assert torch.allclose(again.model(x), system.model(x), atol=2e-2)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="build_bundle"):
        load_bundle(tmp_path / "missing.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not an explorer bundle"):
        load_bundle(tmp_path / "other.pt")


@pytest.mark.parametrize("name, bits", [("two lengths", 12), ("two lengths", 24), ("exchnet", 16)])
def test_retrieve_matches_brute_force(tiny, name, bits):
    system = tiny.systems[name]
    for i in (0, 5, 77):
        hit = retrieve(system, tiny.query(i), bits, tiny.db_labels, int(tiny.query_labels[i]))
        q = encode(system.model, tiny.query(i))[0, system.columns(bits)].astype(int)
        db = system.codes[:, system.columns(bits)].astype(int)
        distances = (bits - db @ q) // 2  # d_H = (c - q.v) / 2
        order = np.argsort(distances, kind="stable")[:10]
        assert np.array_equal(hit.ids, order) and np.array_equal(hit.distances, distances[order])
        assert np.array_equal(hit.differing.sum(1), hit.distances)
        assert np.array_equal(hit.correct, tiny.db_labels[order] == tiny.query_labels[i])
        assert hit.precision == pytest.approx(hit.correct.mean())
        want = average_precisions(q[None], db, tiny.query_labels[i:i + 1], tiny.db_labels)[0]
        assert hit.ap == pytest.approx(want)


def test_unknown_class_and_bad_lengths(tiny):
    system = tiny.systems["two lengths"]
    hit = retrieve(system, tiny.query(0), 12, tiny.db_labels, None, k=4)
    assert hit.correct is None and hit.ap is None and hit.precision is None and len(hit.ids) == 4
    with pytest.raises(ValueError, match="not 48"):
        system.columns(48)
    with pytest.raises(IndexError, match="query split has 108"):
        tiny.query(108)


def _gradcam_by_hand(model, layer, images, target):
    """Grad-CAM of the score target . u, from its definition: A the layer's output, weights the
    mean over pixels of d(score)/dA per channel, relu(sum_c w_c A_c), upsampled bilinearly (pixel
    centres) to the image size, scaled to [0, 1] per image."""
    grabbed = []
    handle = layer.register_forward_hook(lambda module, inputs, output: grabbed.append(output))
    try:
        u = model.eval()(images)
    finally:
        handle.remove()
    A = grabbed[0]
    grads, = torch.autograd.grad((u * torch.as_tensor(target)).sum(), A)
    cam = torch.relu((grads.mean((2, 3), keepdim=True) * A).sum(1, keepdim=True)).detach()
    cam = torch.nn.functional.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    cam = cam - cam.amin((1, 2), keepdim=True)
    return (cam / cam.amax((1, 2), keepdim=True)).numpy()


@pytest.mark.parametrize("name, bits", [("two lengths", 24), ("exchnet", 16)])
def test_explain_gives_the_gradcam_of_q_dot_u_per_tile(tiny, name, bits):
    """The query's code on its own columns, zeros elsewhere: against Grad-CAM computed by hand."""
    system = tiny.systems[name]
    hit = retrieve(system, tiny.query(1), bits, tiny.db_labels, 1)
    tiles = tiny.tensors("train", hit.ids)
    cams = explain(system, tiny.query(1), tiles, hit)
    target = np.zeros(sum(system.lengths), np.float32)
    target[system.columns(bits)] = encode(system.model, tiny.query(1))[0, system.columns(bits)]
    expected = _gradcam_by_hand(system.model, system.cam_layer(), torch.cat([tiny.query(1), tiles]), target)
    assert cams.shape == (11, 64, 64)
    np.testing.assert_allclose(cams, expected, atol=1e-4)


def _hit(correct_labels, query_label=3, bits=12):
    rng = np.random.default_rng(1)
    q = np.where(rng.random(bits) < 0.5, -1, 1)
    codes = np.where(rng.random((10, bits)) < 0.2, -q, q)
    distances = (codes != q).sum(1)
    order = np.argsort(distances, kind="stable")
    return Retrieval(bits, q, np.arange(10) * 7, distances[order], codes[order], np.asarray(correct_labels),
                     query_label, 0.5 if query_label is not None else None)


@pytest.mark.parametrize("query_label", [3, None])
def test_retrieval_figure_borders_read_back_from_pixels(query_label):
    labels = [3, 3, 5, 3, 1, 3, 3, 3, 9, 3]
    hit = _hit(labels, query_label)
    images = np.random.default_rng(0).integers(0, 255, (10, 64, 64, 3), dtype=np.uint8)
    fig = viz.retrieval_figure(images[0], images, hit, title="t")
    assert tile_borders(viz.figure_png(fig)) == expected_borders(hit.correct)
    strips = [ax.images[0].get_array() for ax in fig.axes[1::2]]
    assert np.array_equal(np.asarray(strips[0])[0], hit.query_code > 0)
    assert all(np.array_equal(np.asarray(s)[0], d) for s, d in zip(strips[1:], hit.differing))
    assert [ax.get_xlabel() for ax in fig.axes[2::2]] == [f"d = {d}" for d in hit.distances]
    cams = np.random.default_rng(1).random((11, 64, 64))
    overlaid = viz.retrieval_figure(images[0], images, hit, cams)
    assert not np.array_equal(overlaid.axes[0].images[0].get_array(), fig.axes[0].images[0].get_array())


def test_retrieval_html_lists_what_the_grid_shows():
    hit = _hit([3, 3, 5, 3, 1, 3, 3, 3, 9, 3])
    html = viz.retrieval_html(hit, [f"name <{c}>" for c in range(10)], "query #4", 0.42)
    rows = re.findall(r'data-rank="(\d+)" data-id="(\d+)" data-label="(\d+)" data-distance="(\d+)" data-correct="(\d?)"', html)
    assert [int(r[2]) for r in rows] == list(hit.labels)
    assert [r[4] for r in rows] == ["1", "1", "0", "1", "0", "1", "1", "1", "0", "1"]
    assert [int(r[3]) for r in rows] == list(hit.distances)
    assert "AP 0.500" in html and "P@10 0.70" in html and "12 bits 0.420" in html and "&lt;3&gt;" in html
    unknown = viz.retrieval_html(_hit([3] * 10, None), None, "uploaded: x.png")
    assert "class unknown" in unknown and 'data-correct=""' in unknown


def _file(name, kind, content: bytes):
    """One uploaded file as FileUpload's value holds it."""
    import datetime

    return ({"name": name, "type": kind, "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime.now(datetime.timezone.utc)},)


def _png(image) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow
def test_explorer_wiring(tiny):
    ex = RetrievalExplorer(tiny, index=2, seed=0)
    assert ex.last_state == {"query": ("test", 2), "system": "two lengths", "bits": 24, "cam": False}
    assert ex.species.value == 2 and tile_borders(ex.image.value) == expected_borders(ex.last_hit.correct)
    ex.index.value = 60  # class 6
    assert ex.species.value == 6 and ex.last_state["query"] == ("test", 60)
    ex.species.value = 10  # the first query of class 10
    assert ex.index.value == 10 and ex.last_hit.query_label == 10
    ex.random.click()
    again = RetrievalExplorer(tiny, seed=0)
    again.random.click()
    assert ex.index.value == again.index.value  # seeded
    ex.bits.value = 12
    assert ex.last_hit.bits == 12 and 'data-bits="12"' in ex.summary.value
    ex.system.value = "exchnet"  # a system with other code lengths
    assert ex.bits.options == (16,) and ex.last_state["bits"] == 16
    before = ex.image.value
    ex.cam.value = True
    assert ex.image.value != before and ex.last_state["cam"]


@pytest.mark.slow
def test_explorer_upload(tiny):
    ex = RetrievalExplorer(tiny, index=7)
    by_index = ex.last_hit
    image = tiny.images("test", [7])[0]
    ex.upload.value = _file("bird.png", "image/png", _png(image))
    assert ex.last_state["query"] == ("upload", "bird.png") and ex.last_hit.query_label is None
    assert np.array_equal(ex.last_hit.ids, by_index.ids)  # the same image, uploaded, finds the same
    assert tile_borders(ex.image.value) == expected_borders(None)
    shown = ex.image.value
    ex.upload.value = _file("notes.txt", "text/plain", b"abc")
    assert "fgh-error" in ex.summary.value and "notes.txt" in ex.summary.value
    assert ex.image.value == shown and ex.last_state["query"] == ("upload", "bird.png")  # nothing lost
    ex.index.value = 8  # back to the dataset's queries
    assert ex.last_state["query"] == ("test", 8) and ex.last_hit.query_label == 8


def test_a_failing_render_is_shown_and_loses_nothing(tiny, monkeypatch):
    import fgh_tutorial.app.widgets as widgets

    ex = RetrievalExplorer(tiny, index=4)
    state, shown = ex.last_state, ex.image.value

    def boom(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(widgets, "explain", boom)
    with pytest.raises(RuntimeError):
        ex.cam.value = True
    assert "fgh-error" in ex.summary.value and "boom" in ex.summary.value and "fgh-hit" in ex.summary.value
    assert ex.last_state == state and ex.image.value == shown
