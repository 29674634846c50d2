"""Pure figure functions for experiment results: values over seeds with their spread, curves with
a min-max band, one panel per series, and code-similarity matrices sorted by class. Data in,
matplotlib Figure out (like ``viz``); rows come from ``course.sweeps.summary``:
``{"mean", "min", "max", "values"}``.
"""
from __future__ import annotations

import textwrap
import warnings

import numpy as np
from matplotlib.figure import Figure


def _figure(width, height) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def wrap_labels(labels, inches: float, fontsize: float = 8) -> list:
    """Break each label into lines that fit ``inches`` of width at ``fontsize``, so that neighbouring
    tick labels do not run into each other: a label's own line breaks stay, a line too long breaks
    after its commas first, then at spaces."""
    chars = max(6, int(inches * 72 / (0.55 * fontsize)))  # about the average glyph width

    def fit(line: str) -> str:
        if len(line) <= chars:
            return line
        clauses = line.replace(", ", ",\n").split("\n")
        return "\n".join(textwrap.fill(c, chars) or c for c in clauses)

    return ["\n".join(fit(line) for line in str(label).split("\n")) for label in labels]


def spread_bars(groups: list, series: dict, ylabel: str, title: str = "", chance: float | None = None,
                digits: int = 3) -> Figure:
    """Mean bars with min-max error bars and one dot per seed: ``series = {name: [row per group]}``.
    Long group labels are wrapped to the width of their group."""
    n = max(1, len(series))
    per_group = 0.5 + 0.35 * n  # inches of figure width per group
    fig = _figure(1.6 + len(groups) * per_group + 1.4, 3.6)
    ax = fig.subplots()
    width = 0.8 / n
    x = np.arange(len(groups))
    top = 0.0
    for i, (name, rows) in enumerate(series.items()):
        pos = x + (i - (n - 1) / 2) * width
        mean = np.array([r["mean"] for r in rows])
        low, high = mean - [r["min"] for r in rows], np.array([r["max"] for r in rows]) - mean
        bars = ax.bar(pos, mean, width, label=name, alpha=0.8)
        ax.errorbar(pos, mean, yerr=[low, high], fmt="none", ecolor="black", capsize=3, lw=1)
        for p, r in zip(pos, rows):
            ax.plot([p] * len(r["values"]), r["values"], ".", color="black", ms=3)
        ax.bar_label(bars, labels=[f"{m:.{digits}f}" for m in mean], fontsize=6, padding=2,
                     rotation=90 if n > 2 else 0, label_type="center")
        top = max(top, max(r["max"] for r in rows))
    if chance is not None:
        ax.axhline(chance, color="grey", ls="--", lw=1, label="chance")
    ax.set_ylim(0, top * 1.1 or 1)
    ax.set_xticks(x, wrap_labels(groups, 0.8 * per_group), fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
              title="bar: mean; line: min-max; dots: seeds", title_fontsize=6)
    return fig


def band_curves(x, series: dict, xlabel: str, ylabel: str, title: str = "") -> Figure:
    """Curves of the mean over seeds with a shaded min-max band: ``series = {name: [curve per seed]}``;
    a curve shorter than ``x`` (a run stopped early) counts only where it has values."""
    fig = _figure(5.5, 3.4)
    ax = fig.subplots()
    for name, runs in series.items():
        runs = np.array([list(r) + [np.nan] * (len(x) - len(r)) for r in runs], dtype=float)  # runs may stop early
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # iterations no run reached
            line, = ax.plot(x, np.nanmean(runs, 0), marker=".", label=name)
            ax.fill_between(x, np.nanmin(runs, 0), np.nanmax(runs, 0), color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return fig


def line_and_points(x, series: dict, xlabel: str, ylabel: str, title: str = "", logx: bool = False) -> Figure:
    """One line per series over a shared x (e.g. a measured share against a setting)."""
    fig = _figure(5.0, 3.2)
    ax = fig.subplots()
    for name, ys in series.items():
        ax.plot(x, ys, marker="o", label=name)
    if logx:
        ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    return fig


def panels(xs, series: dict, xlabel: str, ylabels=None, title: str = "") -> Figure:
    """One small panel per series, each with its own y axis (losses of different scales)."""
    n = len(series)
    fig = _figure(2.3 * n + 0.4, 2.6)
    axes = np.atleast_1d(fig.subplots(1, n))
    for i, (ax, (name, ys)) in enumerate(zip(axes, series.items())):
        ax.plot(xs[name] if isinstance(xs, dict) else xs, ys, marker=".", color=f"C{i}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
        if ylabels:
            ax.set_ylabel(ylabels[i] if isinstance(ylabels, (list, tuple)) else ylabels, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def similarity_matrices(matrices: dict, labels, title: str = "") -> Figure:
    """Code similarities (b_i . b_j / c in [-1, 1]) of images sorted by class, one panel per matrix;
    lines mark the class boundaries, so a good code shows bright blocks on the diagonal."""
    labels = np.asarray(labels)
    edges = np.flatnonzero(np.diff(labels)) + 0.5
    fig = _figure(3.0 * len(matrices) + 0.8, 3.2)
    axes = np.atleast_1d(fig.subplots(1, len(matrices)))
    for ax, (name, m) in zip(axes, matrices.items()):
        im = ax.imshow(m, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        for e in edges:
            ax.axhline(e, color="black", lw=0.6)
            ax.axvline(e, color="black", lw=0.6)
        ticks = [np.flatnonzero(labels == c).mean() for c in dict.fromkeys(labels)]
        ax.set_xticks(ticks, [f"class {c}" for c in dict.fromkeys(labels)], fontsize=7, rotation=45)
        ax.set_yticks(ticks, [f"class {c}" for c in dict.fromkeys(labels)], fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="b_i . b_j / c")
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["band_curves", "line_and_points", "panels", "similarity_matrices", "spread_bars"]


def paired_differences(arms: list, panels: dict, xlabel: str, title: str = "") -> Figure:
    """Seed-paired differences against a control with their 95% intervals, one row per arm and one
    panel per setting: ``panels = {panel: {series: [paired row per arm]}}`` (rows of
    ``course.sweeps.paired``: "mean", "low", "high", "diffs"; a row of fewer than two seeds is left out).
    A filled marker: the interval excludes 0."""
    fig = _figure(1.8 + 3.2 * len(panels), 0.9 + 0.36 * len(arms))
    axes = np.atleast_1d(fig.subplots(1, len(panels), sharey=True, sharex=True))
    y = np.arange(len(arms))[::-1]
    for ax, (name, series) in zip(axes, panels.items()):
        n = max(1, len(series))
        for i, (label, rows) in enumerate(series.items()):
            pos = y + (i - (n - 1) / 2) * 0.3
            named = False  # the series is named at its first drawn row
            for p, row in zip(pos, rows):
                if row["n"] < 2:  # one seed has no interval: nothing to draw
                    continue
                colour = f"C{i}"
                low, high = max(row["low"], -1.0), min(row["high"], 1.0)
                ax.plot([low, high], [p, p], color=colour, lw=1.5)
                shown = row["verdict"] != "no difference shown"
                ax.plot(row["mean"], p, "o", color=colour, mfc=colour if shown else "white", ms=5,
                        label=None if named else label)
                named = True
                ax.plot(row["diffs"], [p] * len(row["diffs"]), "|", color=colour, ms=5, alpha=0.6)
        ax.axvline(0, color="grey", lw=1)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    if len(axes) == 1:
        axes[0].set_xlabel(xlabel, fontsize=8)
    else:  # one label under all panels: side by side they would run into each other
        fig.supxlabel(xlabel, fontsize=8)
    axes[0].set_yticks(y, arms, fontsize=8)
    handles = next((h for h in (ax.get_legend_handles_labels() for ax in axes) if h[0]), None)
    if handles:  # the first panel with data names the series, whichever panel that is
        axes[-1].legend(*handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                        title="dot: mean; line: 95% interval;\nticks: seeds; filled: interval excludes 0",
                        title_fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig
