"""Figures of notebook 08's hashing designs: what each design computes, drawn from its own tensors.
Pure functions like ``viz``: data in, matplotlib Figure out."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from .viz import _figure


def _grid_lines(ax, size: int, cells: int, colour="white") -> None:
    for k in range(1, cells):
        ax.axhline(k * size / cells - 0.5, color=colour, lw=0.8)
        ax.axvline(k * size / cells - 0.5, color=colour, lw=0.8)


def pyramid_figure(image, low_maps, top_map, grid: int, levels=(1, 2, 4)) -> Figure:
    """Two-pyramid hashing on one image: the channel-mean of each low-layer map with the g x g grid
    it is pooled to (horizontal pyramid), and the top map with each level of the vertical pyramid."""
    panels = [(np.asarray(image), "image", None)]
    for i, m in enumerate(low_maps):
        m = np.asarray(m, np.float32).mean(0)
        panels.append((m, f"low layer {i + 1} ({m.shape[0]}x{m.shape[1]})\n{grid}x{grid} grid", grid))
    top = np.asarray(top_map, np.float32).mean(0)
    for s in levels:
        panels.append((top, f"top layer ({top.shape[0]}x{top.shape[1]})\nlevel {s}x{s}", s))
    fig = _figure(1.7 * len(panels), 2.0)
    for ax, (panel, title, cells) in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        ax.imshow(panel, cmap=None if panel.ndim == 3 else "magma")
        if cells:
            _grid_lines(ax, panel.shape[0], cells)
        ax.set_title(title, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def order_weights_figure(relevant, weights, title: str = "") -> Figure:
    """One anchor's ranking of a batch (green: same class, red: other, nearest first) and its
    order-aware weights w(p, n), rows the positives and columns the negatives in ranked order,
    each labelled with its rank."""
    relevant = np.asarray(relevant, bool)
    weights = np.asarray(weights, np.float64)
    ranks = np.arange(1, len(relevant) + 1)
    fig = _figure(7.0, 2.8)
    strip_ax, heat_ax = fig.subplots(1, 2, width_ratios=[1, 1.6])
    colours = np.where(relevant[:, None], [[0.10, 0.60, 0.31]], [[0.84, 0.19, 0.15]])[None]
    strip_ax.imshow(colours, aspect="auto", interpolation="nearest", extent=(0.5, len(relevant) + 0.5, 0, 1))
    strip_ax.set_yticks([])
    strip_ax.set_xlabel("rank by Hamming distance")
    strip_ax.set_title("the anchor's ranking (green: same class)", fontsize=9)
    im = heat_ax.imshow(weights, cmap="viridis", aspect="auto", interpolation="nearest")
    heat_ax.set_yticks(range(relevant.sum()), ranks[relevant], fontsize=7)
    step = max(1, (~relevant).sum() // 10)
    heat_ax.set_xticks(range(0, (~relevant).sum(), step), ranks[~relevant][::step], fontsize=7)
    heat_ax.set_xlabel("negatives (their rank)")
    heat_ax.set_ylabel("positives (rank)")
    heat_ax.set_title("w = |Delta AP| of swapping p and n", fontsize=9)
    fig.colorbar(im, ax=heat_ax, shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def latent_figure(latents: dict, bins: int = 40) -> Figure:
    """Histograms of latent-layer values h in (0, 1) (``{name: values}``) and DNNH's threshold 0.5."""
    fig = _figure(4.5, 2.8)
    ax = fig.subplots()
    for name, h in latents.items():
        ax.hist(np.asarray(h).ravel(), bins=bins, range=(0, 1), alpha=0.6, label=name)
    ax.axvline(0.5, color="black", ls="--", lw=1, label="threshold 0.5")
    ax.set_xlabel("latent value h")
    ax.set_ylabel("count (images x bits)")
    ax.legend(fontsize=7)
    return fig


def entropy_figure(per_bit: dict, per_code: dict, fake_label: str = "fake images") -> Figure:
    """Left: the balance entropy of every bit (sorted) of each system's database codes. Right: the
    mean bit entropy of relaxed codes on real and on fake images (``{name: (real, fake)}``)."""
    fig = _figure(9.0, 3.2)
    left, right = fig.subplots(1, 2)
    for name, h in per_bit.items():
        left.plot(np.sort(np.asarray(h))[::-1], marker=".", ms=3, label=name)
    left.set_ylim(0, 1.05)
    left.set_xlabel("bit (sorted)")
    left.set_ylabel("H2(share of +1), bits")
    left.set_title("bit balance of the database codes", fontsize=9)
    left.legend(fontsize=6)
    names = list(per_code)
    x = np.arange(len(names))
    for k, (label, colour) in enumerate((("real images", "tab:blue"), (fake_label, "tab:orange"))):
        bars = right.bar(x + (k - 0.5) * 0.38, [per_code[n][k] for n in names], 0.38, label=label, color=colour)
        right.bar_label(bars, fmt="%.2f", fontsize=6)
    right.axhline(np.log(2), color="grey", ls="--", lw=1, label="log 2 (fair coins)")
    right.set_xticks(x, names, fontsize=7, rotation=20)
    right.set_ylabel("mean bit entropy of u (nats)")
    right.set_title("how sure the network is of each bit", fontsize=9)
    right.legend(fontsize=6)
    return fig
