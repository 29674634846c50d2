"""The pieces of the course's fair tests: erasing controls, masks carried as channels, oracle parts,
and the seed-paired yardstick."""
import math

import pytest
import torch

from fgh_tutorial.attention.erasing import (PartErasing, RandomCells, make_eraser, occlude_part, split_masks,
                                            with_masks)
from fgh_tutorial.course.sweeps import paired, paired_text
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.exchnet import OracleExchNet


def _masks(n=3, size=16):
    m = torch.zeros(n, 5, size, size)
    m[:, 0, 2:4, 2:4] = 1  # beak
    m[:, 1, 8:10, 8:10] = 1  # eye
    m[:, 2, 12:14, 3:6] = 1  # wing
    m[:, 3, 0:2, 12:16] = 1  # tail
    m[:, 4] = m[:, :4].amax(1)
    return m


def test_masks_travel_as_channels_and_split_back():
    x = torch.randn(3, 3, 16, 16)
    xm = with_masks(x, _masks())
    assert xm.shape == (3, 8, 16, 16)
    image, masks = split_masks(xm)
    assert torch.equal(image, x) and torch.equal(masks, _masks())
    assert split_masks(x)[1] is None
    with pytest.raises(ValueError, match="do not match"):
        with_masks(x, _masks(size=8))


def test_occlusion_hides_the_grown_part_and_nothing_else():
    x = torch.ones(3, 3, 16, 16)
    out = occlude_part(x, _masks(), torch.tensor([0, 1, 3]))
    hidden = (out[:, 0] == 0)
    # beak 2x2 grown by one pixel -> 4x4 = 16 pixels; eye the same; tail 2x4 at the corner -> 3x5 = 15
    assert hidden.sum((1, 2)).tolist() == [16, 16, 15]
    assert hidden[0, 1:5, 1:5].all() and not hidden[0, 8:10, 8:10].any()


def test_part_erasing_erases_one_true_part_per_image():
    torch.manual_seed(0)
    x = torch.ones(64, 3, 16, 16)
    erased, keep = PartErasing()(None, x, _masks(64))
    counts = (keep == 0).sum((1, 2))
    assert set(counts.tolist()) <= {16, 15, 20}  # one grown part each: beak/eye 16, tail 15, wing 4x5
    assert len(set(counts.tolist())) >= 3  # parts are drawn at random
    with pytest.raises(ValueError, match="part masks"):
        PartErasing()(None, x, None)


def test_random_cells_erase_exactly_k_whole_cells():
    torch.manual_seed(0)
    x = torch.ones(4, 3, 20, 20)
    erased, keep = RandomCells(3, 5)(None, x)
    assert ((keep == 0).sum((1, 2)) == 3 * 25).all()
    assert not torch.equal(keep[0], keep[1])  # different cells per image
    assert torch.equal(erased, x * keep[:, None])


def test_make_eraser_names_its_choices():
    assert make_eraser("anchors", 64, 50).mode == "anchors"
    assert make_eraser("grid", 448, 10).region_size == 32
    with pytest.raises(ValueError, match="erasing must be one of"):
        make_eraser("everything", 64)


def test_oracle_exchnet_pools_parts_from_the_masks():
    torch.manual_seed(0)
    net = OracleExchNet(build_backbone("minires", pretrained=False), 12, n_classes=3).eval()
    x = torch.randn(2, 3, 32, 32)
    m = _masks(2, 32)[:, :4]
    a = net(torch.cat([x, m], 1))
    with torch.no_grad():
        net.attention.weight.add_(1.0)  # the learned attention is not used
    assert torch.equal(a, net(torch.cat([x, m], 1)))
    assert not torch.allclose(a, net(torch.cat([x, m.roll(5, -1)], 1)))  # the masks are


def test_paired_interval_matches_the_formula():
    runs = [{"setting": {"arm": arm}, "seed": s, "result": {"m": v}}
            for arm, values in (("a", [0.5, 0.6, 0.55, 0.52, 0.58]), ("b", [0.45, 0.5, 0.52, 0.5, 0.5]))
            for s, v in enumerate(values)]
    p = paired({"runs": runs}, "m", {"arm": "a"}, {"arm": "b"})
    d = [0.05, 0.1, 0.03, 0.02, 0.08]
    mean = sum(d) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / 4)
    assert p["mean"] == pytest.approx(mean)
    assert p["high"] - mean == pytest.approx(2.7764451 * sd / math.sqrt(5), rel=1e-6)
    assert p["wins"] == 5 and p["verdict"] == "higher"
    assert paired_text(p).endswith("5/5 seeds: higher")
    flat = paired({"runs": runs}, "m", {"arm": "a"}, {"arm": "a"})
    assert flat["verdict"] == "no difference shown"


def test_paired_uses_only_common_seeds():
    runs = [{"setting": {"arm": "a"}, "seed": s, "result": {"m": 1.0 + s}} for s in range(3)]
    runs += [{"setting": {"arm": "b"}, "seed": s, "result": {"m": 0.0}} for s in (1, 2)]
    p = paired({"runs": runs}, "m", {"arm": "a"}, {"arm": "b"})
    assert p["seeds"] == [1, 2] and p["diffs"] == [2.0, 3.0]


@pytest.fixture
def tiny_course(monkeypatch, tmp_path):
    """The course's data and models at a tiny size, cached under tmp_path."""
    from dataclasses import replace

    from fgh_tutorial.course import experiments, fair
    from fgh_tutorial.training import profiles

    monkeypatch.setenv("FGH_CACHE", str(tmp_path))
    monkeypatch.setitem(profiles.PROFILES, "cpu", replace(profiles.PROFILES["cpu"], per_class=2, per_class_query=1,
                                                          per_class_val=1, image_size=32, epochs=1))
    for cached in (experiments.course_data, fair.masks):
        cached.cache_clear()
    yield fair
    for cached in (experiments.course_data, fair.masks):
        cached.cache_clear()


@pytest.mark.slow  # trains a tiny course model per variant and every arm
def test_every_arm_of_the_fair_test_runs_and_reads_both_query_kinds(tiny_course):
    fair = tiny_course
    for arm in fair.ARMS:
        setting = {"data": "redundant" if arm == "parts" else "default", "arm": arm, "iterations": 1, "samples": 64,
                   "lengths": [12, 24]}
        out = fair.fair_run(setting, 0)
        for kind in ("map", "map_occluded"):
            assert set(out[kind]) == {"12", "24"} and all(0 <= v <= 1 for v in out[kind].values()), arm
        if fair.ARMS[arm][0] is not None:
            assert len(out["val_map"]) == 1 and out["best_iteration"] == 1
    assert fair.settings(["adsh"], ["default"]) == [{"data": "default", "arm": "adsh", **fair.BUDGET}]


@pytest.mark.slow
def test_each_variant_has_its_own_course_model(tiny_course):
    from fgh_tutorial.course import experiments
    from fgh_tutorial.training.cache import cache_dir

    a, b = experiments.course_model("default"), experiments.course_model("redundant")
    names = sorted(p.name for p in cache_dir().glob("cpu*minires*.pt"))
    assert len(names) == 2 and any(n.startswith("cpu-redundant-") for n in names)
    assert not torch.equal(a.head.linear.weight if hasattr(a.head, "linear") else next(a.head.parameters()),
                           b.head.linear.weight if hasattr(b.head, "linear") else next(b.head.parameters()))


def test_paired_differences_figure_draws_each_mean_and_its_interval():
    from fgh_tutorial.app import charts

    shown = {"n": 5, "mean": 0.02, "low": 0.01, "high": 0.03, "diffs": [0.01, 0.02, 0.03, 0.02, 0.02],
             "verdict": "higher"}
    unsure = {"n": 5, "mean": -0.01, "low": -0.03, "high": 0.01, "diffs": [0.0] * 5, "verdict": "no difference shown"}
    fig = charts.paired_differences(["a", "b"], {"default": {"12 bits": [shown, unsure]}}, "difference")
    ax = fig.axes[0]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [float(d.get_xdata()[0]) for d in dots] == [0.02, -0.01]
    assert dots[0].get_markerfacecolor() != "white" and dots[1].get_markerfacecolor() == "white"
    intervals = [line.get_xdata() for line in ax.lines
                 if line.get_marker() in ("None", "", None) and len(line.get_xdata()) == 2]
    assert [0.01, 0.03] in [list(map(float, x)) for x in intervals]


def test_paired_differences_legend_names_the_series_when_the_last_panel_is_empty():
    from fgh_tutorial.app import charts

    row = {"n": 5, "mean": 0.02, "low": 0.01, "high": 0.03, "diffs": [0.02] * 5, "verdict": "higher"}
    empty = {"n": 0}
    fig = charts.paired_differences(["a"], {"default": {"12 bits": [row], "48 bits": [row]},
                                            "redundant": {"12 bits": [empty], "48 bits": [empty]}}, "difference")
    legend = fig.axes[-1].get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == ["12 bits", "48 bits"]


def test_paired_differences_leave_out_one_seed_rows_and_still_name_the_series():
    from fgh_tutorial.app import charts

    one = {"n": 1, "mean": 0.2, "low": float("-inf"), "high": float("inf"), "diffs": [0.2], "verdict": "no difference shown"}
    row = {"n": 5, "mean": 0.02, "low": 0.01, "high": 0.03, "diffs": [0.02] * 5, "verdict": "higher"}
    fig = charts.paired_differences(["a", "b"], {"redundant": {"12 bits": [one, row]}}, "difference")
    ax = fig.axes[0]
    assert [float(d.get_xdata()[0]) for d in ax.lines if d.get_marker() == "o"] == [0.02]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["12 bits"]


def test_band_curves_take_runs_that_stopped_early():
    from fgh_tutorial.app import charts

    fig = charts.band_curves([1, 2, 3], {"a": [[0.1, 0.3], [0.3, 0.5, 0.6]]}, "iteration", "mAP")
    assert list(fig.axes[0].lines[0].get_ydata()) == pytest.approx([0.2, 0.4, 0.6])


def test_loading_the_course_model_leaves_the_thread_count(tiny_course):
    from fgh_tutorial.course import experiments

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        experiments.course_model("default")  # trained at the profile's two threads, then loaded
        assert torch.get_num_threads() == 1
        experiments.course_model("default")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
