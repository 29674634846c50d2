"""Render functions headless, and the CAM explorer's wiring without a browser."""
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from fgh_tutorial.app import viz
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.heads import HashingModel


def _bars(fig):
    return [(round(b.get_x() + b.get_width() / 2, 6), b.get_height()) for b in fig.axes[0].patches]


def test_figures_draw_their_data():
    """Each figure read back from its artists, against the data and values computed by hand."""
    from matplotlib import colormaps
    from matplotlib.colors import to_rgba

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    codes = np.where(rng.random((3, 48)) < 0.5, -1, 1)

    grid = viz.image_grid(images, titles=list("abcde"), ncols=3, borders=["green", None, "red", None, None])
    shown = [a for a in grid.axes if a.get_visible() and a.images]
    assert len(grid.axes) == 6 and len(shown) == 5  # 2 rows of 3, the sixth axis switched off
    for i, ax in enumerate(shown):
        assert np.array_equal(ax.images[0].get_array(), images[i]) and ax.get_title() == "abcde"[i]
        spines = list(ax.spines.values())
        colour = ["green", None, "red", None, None][i]
        assert all(s.get_visible() == (colour is not None) for s in spines)
        assert colour is None or all(s.get_edgecolor() == to_rgba(colour) for s in spines)

    rec, prec = np.array([0.1, 0.5, 1]), np.array([1, 0.5, 0.2])
    line, = viz.pr_figure({"x": (np.arange(3), prec, rec)}).axes[0].lines
    assert np.array_equal(line.get_xdata(), rec) and np.array_equal(line.get_ydata(), prec)

    bars = viz.grouped_bars({"a": [0.1, 0.2], "b": [0.3, 0.4]}, ["g1", "g2"], "mAP", chance=0.05)
    # two series of width 0.4 around each group's x: a at x - 0.2, b at x + 0.2
    assert _bars(bars) == [(-0.2, 0.1), (0.8, 0.2), (0.2, 0.3), (1.2, 0.4)]
    assert list(bars.axes[0].lines[0].get_ydata()) == [0.05, 0.05]  # the chance line

    assert _bars(viz.tie_figure(np.arange(13) * 2.0, 12)) == [(d, 2.0 * d) for d in range(13)]

    balance = viz.bit_balance_figure(codes)
    assert [x for x, _ in _bars(balance)] == list(range(48))
    assert [h for _, h in _bars(balance)] == pytest.approx([sum(c[j] == 1 for c in codes) / 3 for j in range(48)])

    bits = viz.code_bits_figure(codes, names=["a", "b", "c"])
    assert np.array_equal(bits.axes[0].images[0].get_array(), codes > 0)
    words = [sum(1 << j for j in range(48) if c[j] == 1) for c in codes]  # bit j of word 0 is code bit j
    assert [t.get_text() for t in bits.axes[0].get_yticklabels()] == [f"{n} {w:#018x}" for n, w in zip("abc", words)]

    loglog = viz.log_log_figure([1, 10, 100], {"s": [1, 2, 3]}, "n", "ms")
    ax = loglog.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert list(ax.lines[0].get_xdata()) == [1, 10, 100] and list(ax.lines[0].get_ydata()) == [1, 2, 3]

    cam = rng.random((16, 16))
    panels = [a.images[0].get_array() for a in viz.cam_figure(images[0], {"m": cam}, 0.4).axes if a.images]
    overlay = (0.6 * images[0] / 255 + 0.4 * colormaps["jet"](cam)[..., :3]) * 255  # (1 - alpha) x + alpha jet(A)
    assert len(panels) == 2 and np.array_equal(panels[0], images[0])
    assert np.abs(panels[1].astype(int) - overlay).max() <= 0.5 + 1e-6


def test_overlays():
    img = np.zeros((4, 4, 3), np.uint8)
    cam = np.zeros((4, 4))
    cam[0, 0] = 1
    out = viz.cam_overlay(img, cam, alpha=1.0)
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3) and not np.array_equal(out[0, 0], out[3, 3])
    assert np.array_equal(viz.cam_overlay(img, cam, alpha=0.0), img)
    masks = np.zeros((1, 4, 4), bool)
    masks[0, 1, 1] = True
    tinted = viz.overlay_masks(img, masks, ["beak"])
    assert tinted[1, 1].sum() > 0 and tinted[0, 0].sum() == 0


@pytest.mark.slow
def test_cam_explorer_renders_what_the_widgets_say(monkeypatch):
    from fgh_tutorial.app import widgets

    torch.manual_seed(0)
    model = HashingModel(build_backbone("minires"), 8).eval()
    images = torch.randn(3, 3, 32, 32)
    seen = []
    real = widgets.viz.cam_figure
    monkeypatch.setattr(widgets.viz, "cam_figure", lambda *a, **k: seen.append((a, k)) or real(*a, **k))
    explorer = widgets.CamExplorer(model, images, masks=np.zeros((3, 4, 32, 32)), mask_names=("beak", "eye", "wing", "tail"))
    assert explorer.last_state == {"index": 0, "method": "channel_mean", "layer": "last stage", "alpha": 0.5}
    assert explorer.layer.disabled
    explorer.method.value = "gradcam"
    explorer.index.value = 2
    explorer.alpha.value = 0.8
    assert explorer.last_state == {"index": 2, "method": "gradcam", "layer": "last stage", "alpha": 0.8}
    assert not explorer.layer.disabled
    image, cams, alpha = seen[-1][0][:3]
    assert image.shape == (32, 32, 3) and list(cams) == ["gradcam"] and alpha == 0.8
    assert isinstance(explorer.last_figure, Figure)
    explorer.layer.value = "stage -2"
    assert explorer.last_state["layer"] == "stage -2"


def test_explorer_leaves_a_png_for_static_readers(monkeypatch):
    import base64

    import IPython.display

    from fgh_tutorial.app import widgets

    model = HashingModel(build_backbone("minires"), 8).eval()
    explorer = widgets.CamExplorer(model, torch.randn(2, 3, 32, 32))
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda data, raw=False: shown.append((data, raw)))
    explorer._ipython_display_()
    (data, raw), = shown
    assert raw and "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert "VBox" not in data["text/plain"] and "image 0" in data["text/plain"]
