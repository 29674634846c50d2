"""Render functions headless, and the CAM explorer's wiring without a browser."""
import numpy as np
import torch
from matplotlib.figure import Figure

from fgh_tutorial.app import viz
from fgh_tutorial.models.backbones import build_backbone
from fgh_tutorial.models.heads import HashingModel


def test_figures_are_pure_and_return_figures():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    codes = np.where(rng.random((3, 48)) < 0.5, -1, 1)
    figs = [
        viz.image_grid(images, titles=list("abcde"), ncols=3, borders=["green", None, "red", None, None]),
        viz.pr_figure({"x": (np.arange(3), np.array([1, 0.5, 0.2]), np.array([0.1, 0.5, 1]))}),
        viz.grouped_bars({"a": [0.1, 0.2], "b": [0.3, 0.4]}, ["g1", "g2"], "mAP", chance=0.05),
        viz.tie_figure(np.arange(13), 12),
        viz.bit_balance_figure(codes),
        viz.code_bits_figure(codes, names=["a", "b", "c"]),
        viz.log_log_figure([1, 10, 100], {"s": [1, 2, 3]}, "n", "ms"),
        viz.cam_figure(images[0], {"m": rng.random((16, 16))}, 0.4),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    grid = figs[0]
    assert len([a for a in grid.axes if a.get_visible() and a.images]) == 5


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
