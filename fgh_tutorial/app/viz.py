"""Pure figure functions: data in, matplotlib Figure out. Nothing here reads global state,
so notebooks, widgets and tests all call the same code."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from ..retrieval.balance import bit_shares

PART_COLOURS = {"beak": (1.0, 0.85, 0.0), "eye": (0.0, 0.9, 1.0), "wing": (1.0, 0.2, 0.6), "tail": (0.3, 1.0, 0.3)}


def _figure(width, height) -> Figure:
    # Figure objects (not pyplot) keep these functions free of global state; Jupyter shows
    # a returned Figure through its PNG repr.
    return Figure(figsize=(width, height), layout="constrained")


def image_grid(images, titles=None, ncols: int = 8, borders=None, size: float = 1.3, suptitle=None) -> Figure:
    """Images (N, H, W, 3) uint8 in a grid; ``borders`` is a colour (or None) per image."""
    images = np.asarray(images)
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = _figure(size * ncols, size * nrows + (0.3 if suptitle else 0))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for i, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        ax.imshow(images[i])
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
        _frame(ax, borders[i] if borders is not None else None)
    if suptitle:
        fig.suptitle(suptitle, fontsize=10)
    return fig


def _frame(ax, colour, width: float = 3) -> None:
    """A coloured border around an image axis (none for ``colour=None``)."""
    for spine in ax.spines.values():
        spine.set_visible(colour is not None)
        if colour is not None:
            spine.set_edgecolor(colour)
            spine.set_linewidth(width)


def overlay_masks(image, masks, names, alpha: float = 0.55) -> np.ndarray:
    """The image with each part mask tinted in its colour (``PART_COLOURS``); uint8 HxWx3."""
    out = np.asarray(image, dtype=np.float32) / 255
    for mask, name in zip(masks, names):
        if name in PART_COLOURS:
            m = np.asarray(mask, bool)[..., None]
            out = np.where(m, (1 - alpha) * out + alpha * np.array(PART_COLOURS[name]), out)
    return (out * 255).round().astype(np.uint8)


def part_legend(fig: Figure) -> Figure:
    from matplotlib.patches import Patch

    fig.legend(handles=[Patch(color=c, label=n) for n, c in PART_COLOURS.items()],
               loc="outside lower center", ncols=len(PART_COLOURS), fontsize=8, frameon=False)
    return fig


def pr_figure(curves: dict) -> Figure:
    """Precision-recall curves by Hamming radius: ``{name: (radius, precision, recall)}``."""
    fig = _figure(4.5, 3.6)
    ax = fig.subplots()
    for name, (_, prec, rec) in curves.items():
        ax.plot(rec, prec, marker=".", label=name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("precision-recall within Hamming radius r")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    return fig


def grouped_bars(values: dict, groups: list, ylabel: str, title: str = "", chance: float | None = None) -> Figure:
    """Bars per group for each series: ``values = {series: [v per group]}``. The figure widens with
    the number of bars, and the legend sits outside the axes, so neither labels nor bars overlap."""
    n = max(1, len(values))
    fig = _figure(1.6 + len(groups) * (0.45 + 0.3 * n) + (1.3 if n > 1 or chance is not None else 0), 3.4)
    ax = fig.subplots()
    width = 0.8 / n
    x = np.arange(len(groups))
    top = 0.0
    for i, (name, vals) in enumerate(values.items()):
        bars = ax.bar(x + (i - (n - 1) / 2) * width, vals, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, padding=1, rotation=90 if n > 2 else 0)
        top = max(top, max(vals, default=0.0))
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label="chance")
    ax.set_ylim(0, top * (1.25 if n > 2 else 1.12) or 1)
    ax.set_xticks(x, groups, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if n > 1 or chance is not None:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def tie_figure(counts_per_distance: np.ndarray, bits: int) -> Figure:
    """How many database items a query finds at each Hamming distance (mean over queries)."""
    fig = _figure(4.5, 3.0)
    ax = fig.subplots()
    ax.bar(np.arange(bits + 1), counts_per_distance, color="tab:purple")
    ax.set_xlabel("Hamming distance to the query")
    ax.set_ylabel("database items (mean per query)")
    ax.set_title(f"{bits} bits: only {bits + 1} distances, so ranks tie", fontsize=10)
    return fig


def bit_balance_figure(codes) -> Figure:
    """Share of +1 per bit: a good code uses every bit about half the time."""
    shares = bit_shares(codes)
    fig = _figure(4.5, 2.6)
    ax = fig.subplots()
    ax.bar(np.arange(len(shares)), shares, color="tab:green")
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("bit")
    ax.set_ylabel("share of +1")
    return fig


def line_figure(xs, series: dict, xlabel: str, ylabel: str, title: str = "") -> Figure:
    fig = _figure(4.5, 3.0)
    ax = fig.subplots()
    for name, ys in series.items():
        ax.plot(xs[name] if isinstance(xs, dict) else xs, ys, marker=".", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def code_bits_figure(codes, names=None) -> Figure:
    """+-1 codes as rows of squares (dark = +1), with each code's packed uint64 words in hex."""
    from ..retrieval.hamming import pack_codes

    codes = np.asarray(codes)
    words = pack_codes(codes)
    fig = _figure(0.16 * codes.shape[1] + 2.2, 0.45 * len(codes) + 0.6)
    ax = fig.subplots()
    ax.imshow(codes > 0, cmap="Greys", vmin=0, vmax=1, aspect="equal")
    ax.set_yticks(range(len(codes)), [
        f"{(names or [''] * len(codes))[i]} {' '.join(f'{int(w):#018x}' for w in words[i])}" for i in range(len(codes))
    ], fontsize=7, family="monospace")
    ax.set_xticks(range(0, codes.shape[1], 8))
    ax.set_xlabel("bit j (word j // 64, position j % 64)")
    return fig


def log_log_figure(xs, series: dict, xlabel: str, ylabel: str, title: str = "") -> Figure:
    fig = line_figure(xs, series, xlabel, ylabel, title)
    ax = fig.axes[0]
    ax.set_xscale("log")
    ax.set_yscale("log")
    return fig


def cam_overlay(image, cam, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """An attention map in [0, 1] blended over a uint8 image: (1 - alpha) x + alpha colour(A)."""
    from matplotlib import colormaps

    heat = colormaps[cmap](np.clip(np.asarray(cam, np.float32), 0, 1))[..., :3]
    out = (1 - alpha) * np.asarray(image, np.float32) / 255 + alpha * heat
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def cam_figure(image, cams: dict, alpha: float = 0.5, title: str = "", masks=None, mask_names=None) -> Figure:
    """The image (with its part masks, if given) and one overlay per entry of ``cams``."""
    panels = [np.asarray(image) if masks is None else overlay_masks(image, masks, mask_names)]
    titles = ["image" if masks is None else "parts"]
    for name, cam in cams.items():
        panels.append(cam_overlay(image, cam, alpha))
        titles.append(name)
    fig = image_grid(np.stack(panels), titles=titles, ncols=len(panels), size=1.6, suptitle=title or None)
    return fig


# ---------------------------------------------------------------- the retrieval explorer
CORRECT, WRONG, QUERY, UNKNOWN = "#1a9850", "#d73027", "#4575b4", "#969696"  # tile borders
DIFFERING_BIT, SAME_BIT = "#762a83", "#e6e6e6"


def retrieval_figure(query_image, images, hit, cams=None, title: str = "", size: float = 1.25) -> Figure:
    """The query and its top-k in one row, each with its code underneath.

    ``hit``: an ``explorer.Retrieval`` (ids, distances, labels, codes, query_code, correct).
    Borders: blue the query; green a result of the query's class, red another class, grey when
    the query's class is unknown (an uploaded image). Strips: the query's bits (dark = +1), and
    for each result the bits that differ from the query (purple): their count is the distance.
    ``cams`` (1 + k, H, W) in [0, 1] are blended over the tiles when given.
    """
    from matplotlib.colors import ListedColormap

    tiles = [np.asarray(query_image)] + list(np.asarray(images))
    if cams is not None:
        tiles = [cam_overlay(t, c) for t, c in zip(tiles, cams)]
    correct = hit.correct
    colours = [QUERY] + ([UNKNOWN] * len(hit.ids) if correct is None else [CORRECT if c else WRONG for c in correct])
    query_title = "query\n" + ("uploaded image" if hit.query_label is None else f"class {hit.query_label}")
    titles = [query_title] + [f"{r + 1}. #{i}\nclass {y}" for r, (i, y) in enumerate(zip(hit.ids, hit.labels))]
    under = ["code"] + [f"d = {d}" for d in hit.distances]
    strips = [(hit.query_code[None] > 0, "Greys")] + [(row[None], ListedColormap([SAME_BIT, DIFFERING_BIT]))
                                                       for row in hit.differing]
    n = len(tiles)
    fig = _figure(size * n, size * 1.3 + (0.35 if title else 0.1))
    grid = fig.add_gridspec(2, n, height_ratios=[1, 0.1])
    for j in range(n):
        ax = fig.add_subplot(grid[0, j])
        ax.imshow(tiles[j])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(titles[j], fontsize=7)
        ax.set_xlabel(under[j], fontsize=8, labelpad=2)
        _frame(ax, colours[j], 4)
        strip = fig.add_subplot(grid[1, j])
        strip.imshow(strips[j][0], cmap=strips[j][1], vmin=0, vmax=1, aspect="auto", interpolation="nearest")
        strip.set_xticks([])
        strip.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return fig


def retrieval_html(hit, class_names=None, query: str = "", system_map: float | None = None) -> str:
    """The same retrieval as text: the query, its AP and precision, and one row per result
    (database index, class, distance, same class or not), with data attributes to read back."""
    from html import escape

    def name(y):
        return f"{y}" + (f" ({escape(class_names[y])})" if class_names is not None else "")

    known = hit.query_label is not None
    scores = (f"AP {hit.ap:.3f} (tie-aware) \u00b7 P@{len(hit.ids)} {hit.precision:.2f} (the results shown)"
              if known else "class unknown: no AP or precision")
    system = f" \u00b7 mAP of this system at {hit.bits} bits {system_map:.3f}" if system_map is not None else ""
    rows = []
    correct = [None] * len(hit.ids) if not known else [bool(c) for c in hit.correct]
    for r, (i, y, d, ok) in enumerate(zip(hit.ids, hit.labels, hit.distances, correct)):
        mark = "" if ok is None else (f'<span style="color:{CORRECT}">\u2713 same class</span>' if ok
                                      else f'<span style="color:{WRONG}">\u2717 other class</span>')
        rows.append(f'<tr class="fgh-hit" data-rank="{r + 1}" data-id="{i}" data-label="{y}" data-distance="{d}" '
                    f'data-correct="{"" if ok is None else int(ok)}"><td>{r + 1}</td><td>#{i}</td><td>{name(y)}</td>'
                    f"<td>{d}</td><td>{mark}</td></tr>")
    label = "" if not known else f' data-query-label="{hit.query_label}"'
    query_class = f" \u00b7 class {name(hit.query_label)}" if known else ""
    head = "<tr><th>rank</th><th>database</th><th>class</th><th>distance</th><th></th></tr>"
    return (f'<div class="fgh-summary" data-bits="{hit.bits}"{label}><p><b>{escape(query)}</b>'
            f"{query_class}<br>{scores}{system}</p>"
            f'<table class="fgh-hits" style="font-size:12px">{head}{"".join(rows)}</table></div>')


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """A figure as PNG bytes (for an image widget or a file)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


__all__ = ["CORRECT", "PART_COLOURS", "QUERY", "UNKNOWN", "WRONG", "bit_balance_figure", "cam_figure", "cam_overlay",
           "code_bits_figure", "figure_png", "grouped_bars", "image_grid", "line_figure", "log_log_figure",
           "overlay_masks", "part_legend", "pr_figure", "retrieval_figure", "retrieval_html", "tie_figure"]
