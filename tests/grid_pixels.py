"""Reading the retrieval grid back from its pixels: which border colour frames each tile."""
import io

import numpy as np
from PIL import Image

from fgh_tutorial.app import viz

BORDERS = {"query": viz.QUERY, "correct": viz.CORRECT, "wrong": viz.WRONG, "unknown": viz.UNKNOWN}


def _rgb(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def tile_borders(png: bytes, min_run: int = 40, tol: int = 12) -> list:
    """Names of the border colours of the framed tiles, left to right. A frame's top and bottom
    edges are horizontal runs of one border colour as wide as the frame (the longest runs);
    image content (noisy) never makes runs that long."""
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    runs = []
    for name, colour in BORDERS.items():
        mask = (np.abs(image - _rgb(colour)) <= tol).all(-1)
        for y in np.flatnonzero(mask.sum(1) >= min_run):
            edges = np.flatnonzero(np.diff(np.r_[0, mask[y].astype(int), 0]))
            runs += [(int(s), int(e - s), name) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_run]
    width = max((w for _, w, _ in runs), default=0)
    tiles = []
    for x, _, name in sorted(r for r in runs if r[1] >= 0.9 * width):
        if tiles and x - tiles[-1][0] <= 8:
            assert tiles[-1][1] == name, f"two border colours at x={x}: {tiles[-1][1]} and {name}"
            continue
        tiles.append((x, name))
    return [name for _, name in tiles]


def expected_borders(correct) -> list:
    """The query's frame, then green/red per result (grey when the query's class is unknown)."""
    return ["query"] + (["unknown"] * 10 if correct is None else ["correct" if c else "wrong" for c in correct])
