"""Thin ipywidgets wiring over the pure render functions of ``viz``.

An explorer holds its widgets and a ``state()``; every change re-renders through ``render(state)``
into an Output widget. Tests set widget values and read ``last_state`` without a browser.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import torch

from . import viz
from .cam import METHODS, cam_layers, compute_cams
from .data.transforms import denormalize


class CamExplorer:
    """Pick an image, a CAM method, a layer and the overlay opacity; see the CAM over the image
    next to the image's part masks."""

    def __init__(self, model, images: torch.Tensor, masks=None, mask_names=None, titles=None):
        self.model, self.images, self.masks, self.mask_names = model, images, masks, mask_names
        self.titles = titles
        self.layers = cam_layers(model)
        self.index = W.IntSlider(0, 0, len(images) - 1, description="image")
        self.method = W.Dropdown(options=METHODS, value="channel_mean", description="method")
        self.layer = W.Dropdown(options=list(self.layers), description="layer")
        self.alpha = W.FloatSlider(0.5, min=0.0, max=1.0, step=0.05, description="opacity")
        self.out = W.Output()
        self.last_state = None
        for w in (self.index, self.method, self.layer, self.alpha):
            w.observe(lambda _: self.update(), names="value")
        self.update()

    def state(self) -> dict:
        return {"index": self.index.value, "method": self.method.value, "layer": self.layer.value,
                "alpha": self.alpha.value}

    def render(self, state: dict):
        i = state["index"]
        x = self.images[i:i + 1]
        layer = None if state["method"] == "channel_mean" else self.layers[state["layer"]]
        cam = compute_cams(self.model, x, state["method"], layer=layer)[0]
        image = denormalize(x)[0]
        masks = None if self.masks is None else np.asarray(self.masks[i])
        title = self.titles[i] if self.titles is not None else f"image {i}"
        return viz.cam_figure(image, {state["method"]: cam}, state["alpha"], title, masks, self.mask_names)

    def update(self):
        self.last_state = self.state()
        self.layer.disabled = self.last_state["method"] == "channel_mean"
        fig = self.render(self.last_state)
        self.out.clear_output(wait=True)
        with self.out:
            from IPython.display import display

            display(fig)
        self.last_figure = fig

    def widget(self):
        return W.VBox([W.HBox([self.index, self.method]), W.HBox([self.layer, self.alpha]), self.out])

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget())
