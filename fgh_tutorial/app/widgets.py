"""Thin ipywidgets wiring over the pure render functions of ``viz``.

An explorer holds its widgets and a ``state()``; every change re-renders through ``render(state)``
into an Output widget. Tests set widget values and read ``last_state`` without a browser.
Displayed in a notebook, an explorer also leaves a PNG of its current figure and a one-line
description in the output (``show``): static readers (GitHub, nbviewer, nbconvert's HTML), which
have no widget state, see the picture instead of a ``VBox(...)`` repr.
"""
from __future__ import annotations

import ipywidgets as W
import numpy as np
import torch

from . import viz
from ..attention.cam import METHODS, cam_layers, compute_cams
from ..data.transforms import denormalize
from .explorer import explain, retrieve


def show(widget, figure, text: str) -> None:
    """Display ``widget`` (live in Jupyter) with a PNG of ``figure`` and ``text`` as fallbacks."""
    import base64

    from IPython.display import display

    data = widget._repr_mimebundle_() or {}
    data = dict(data[0] if isinstance(data, tuple) else data)
    data["image/png"] = base64.b64encode(viz.figure_png(figure)).decode("ascii")
    data["text/plain"] = text
    display(data, raw=True)


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
        s = self.last_state
        show(self.widget(), self.last_figure, f"CAM explorer: image {s['index']}, {s['method']}, opacity {s['alpha']} "
                                              "(interactive in Jupyter; the picture shows this state)")


class RetrievalExplorer:
    """Top-10 retrieval of a bundle of trained systems (``explorer.Bundle``).

    Pick the query by its index, by class (the first query of that class), at random, or
    upload an image; pick the system and the code length; toggle the CAM overlay. The grid
    (``viz.retrieval_figure``) and the table (``viz.retrieval_html``) are re-rendered on every
    change. Tests set widget values and read ``last_state`` / ``last_hit``.
    """

    def __init__(self, bundle, system: str | None = None, bits: int | None = None, index: int = 0,
                 seed: int = 0, k: int = 10):
        self.bundle, self.k = bundle, k
        self.rng = np.random.default_rng(seed)
        labels = np.asarray(bundle.query_labels)
        self.first_of_class = {int(c): int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)}
        self.class_names = bundle.class_names()
        system = system or next(iter(bundle.systems))
        self.index = W.BoundedIntText(index, min=0, max=len(labels) - 1, description="query #")
        self.species = W.Dropdown(options=[(f"{c}: {self.class_names[c]}", c) for c in self.first_of_class],
                                  value=int(labels[index]), description="class")
        self.random = W.Button(description="random query", icon="random")
        self.upload = W.FileUpload(accept="image/*", multiple=False, description="upload")
        self.system = W.Dropdown(options=list(bundle.systems), value=system, description="method")
        lengths = bundle.systems[system].lengths
        self.bits = W.ToggleButtons(options=lengths, value=bits or max(lengths),
                                    style={"button_width": "52px"})
        self.cam = W.Checkbox(False, description="CAM overlay")
        self.image = W.Image(format="png")
        self.summary = W.HTML()
        self.uploaded = None  # (name, uint8 image, tensor) while an uploaded image is the query
        self.last_state = self.last_hit = self.last_figure = None
        self._quiet, self._table = False, ""
        for w, css in ((self.index, "fgh-index"), (self.species, "fgh-class"), (self.random, "fgh-random"),
                       (self.upload, "fgh-upload"), (self.system, "fgh-system"), (self.bits, "fgh-bits"),
                       (self.cam, "fgh-cam"), (self.image, "fgh-grid"), (self.summary, "fgh-summary-box")):
            w.add_class(css)
        self._wire()
        self.update()

    # ------------------------------------------------------------ wiring
    def _wire(self):
        self.index.observe(lambda _: self._dataset_query(), names="value")
        self.species.observe(lambda ch: self._pick_class(ch["new"]), names="value")
        self.random.on_click(lambda _: self._random())
        self.upload.observe(lambda ch: self._upload(ch["new"]), names="value")
        self.system.observe(lambda ch: self._pick_system(ch["new"]), names="value")
        for w in (self.bits, self.cam):
            w.observe(lambda _: self.update(), names="value")

    def _dataset_query(self):
        self.uploaded = None
        label = int(self.bundle.query_labels[self.index.value])
        if self.species.value != label:
            self.species.value = label  # its observer sees the index already in this class
        self.update()

    def _pick_class(self, label):
        if self.uploaded is None and int(self.bundle.query_labels[self.index.value]) == label:
            return
        self.index.value = self.first_of_class[label]
        if self.uploaded is not None:
            self._dataset_query()

    def _random(self):
        i = int(self.rng.integers(len(self.bundle.query_labels)))
        if i == self.index.value:
            self._dataset_query()
        self.index.value = i

    def _upload(self, files):
        if not files:
            return
        file = files[0]
        try:
            image, x = self.bundle.decode_upload(file["content"], file["name"])
        except ValueError as err:  # keep the current query and show why
            self._error(str(err))
            return
        self.uploaded = (file["name"], image, x)
        self.update()

    def _pick_system(self, name):
        lengths = self.bundle.systems[name].lengths
        if tuple(self.bits.options) != tuple(lengths):
            keep = self.bits.value if self.bits.value in lengths else max(lengths)
            self._quiet = True  # one render for the new system, not one per changed trait
            try:
                self.bits.options = lengths
                self.bits.value = keep
            finally:
                self._quiet = False
        self.update()

    # ------------------------------------------------------------ state and render
    def state(self) -> dict:
        query = ("upload", self.uploaded[0]) if self.uploaded else ("test", self.index.value)
        return {"query": query, "system": self.system.value, "bits": self.bits.value, "cam": self.cam.value}

    def render(self, state: dict):
        """(figure, html, retrieval) of a state."""
        bundle, system = self.bundle, self.bundle.systems[state["system"]]
        kind, which = state["query"]
        if kind == "upload":
            _, image, x = self.uploaded
            label, text = None, f"uploaded: {which}"
        else:
            image, x = bundle.images("test", [which])[0], bundle.query(which)
            label, text = int(bundle.query_labels[which]), f"query #{which}"
        hit = retrieve(system, x, state["bits"], bundle.db_labels, label, self.k)
        cams = explain(system, x, bundle.tensors("train", hit.ids), hit) if state["cam"] else None
        title = f"{state['system']} \u00b7 {state['bits']} bits \u00b7 {text}"
        fig = viz.retrieval_figure(image, bundle.images("train", hit.ids), hit, cams, title)
        html = viz.retrieval_html(hit, self.class_names, text, system.map.get(state["bits"]))
        return fig, html, hit

    def update(self):
        if self._quiet:
            return
        state = self.state()
        try:
            fig, html, hit = self.render(state)
        except Exception as err:  # shown above the last good result, and raised to the kernel's log
            self._error(f"could not show {state}: {err}")
            raise
        self.image.value = viz.figure_png(fig)
        self.summary.value = self._table = html
        self.last_state, self.last_figure, self.last_hit = state, fig, hit

    def _error(self, message: str):
        from html import escape

        self.summary.value = f'<div class="fgh-error" style="color:{viz.WRONG}">{escape(message)}</div>' + self._table

    def widget(self):
        query = W.HBox([self.index, self.species, self.random, self.upload])
        return W.VBox([query, W.HBox([self.system, W.Label("bits"), self.bits, self.cam]), self.image, self.summary])

    def _ipython_display_(self):
        s = self.last_state
        show(self.widget(), self.last_figure, f"retrieval explorer: query {s['query']}, {s['system']}, {s['bits']} bits "
                                              "(interactive in Jupyter; the picture shows this state)")

