"""The SynthBirds body plan: the canonical bird's polygons and the pose that places them.

The canonical bird faces right, x in [-1, 1], y down. The first cue of each attribute sits on
its part (beak, eye ring, wing bar, tail); ``SECOND_CUES`` are the shapes of the redundant
option, one more cue per attribute, each far from the first (see ``synthetic.render``):

    beak colour  -> a band across the rump        eye ring     -> a white belly patch
    wing-bar     -> a stripe on the crown         tail pattern -> bars or spots on the breast
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _ellipse(cx, cy, rx, ry, angle=0.0, n=28):
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], 1)


def _poly(*pts):
    return np.asarray(pts, dtype=np.float64)


BODY = _ellipse(0.0, 0.1, 0.5, 0.3)
HEAD = _ellipse(0.45, -0.22, 0.24, 0.24)
BEAK = _poly((0.62, -0.32), (0.62, -0.12), (0.98, -0.2))
EYE_REGION = _ellipse(0.5, -0.27, 0.12, 0.12)
EYE_RING = _ellipse(0.5, -0.27, 0.115, 0.115)
PUPIL = _ellipse(0.5, -0.27, 0.06, 0.06)
WING = _ellipse(-0.05, 0.05, 0.38, 0.17, angle=-0.12)
WING_BAR = _poly((-0.12, -0.11), (0.0, -0.12), (0.05, 0.21), (-0.07, 0.22))
TAIL = _poly((-0.42, 0.02), (-0.98, -0.18), (-0.98, 0.34), (-0.42, 0.2))
TAIL_BARS = [_poly((x, -0.2), (x + 0.1, -0.2), (x + 0.1, 0.36), (x, 0.36)) for x in (-0.9, -0.7)]
TAIL_SPOTS = [_ellipse(x, y, 0.06, 0.06) for x, y in ((-0.86, -0.04), (-0.86, 0.2), (-0.66, 0.08))]
LEGS = [_poly((x, 0.35), (x + 0.04, 0.35), (x + 0.0, 0.62), (x - 0.04, 0.62)) for x in (-0.05, 0.12)]

# second cues (redundant option)
RUMP_BAND = _poly((-0.44, -0.07), (-0.32, -0.09), (-0.32, 0.29), (-0.44, 0.27))
BELLY_PATCH = _ellipse(0.14, 0.3, 0.14, 0.07)
CROWN_STRIPE = _ellipse(0.4, -0.4, 0.14, 0.06, angle=-0.2)
BREAST_BARS = [_poly((x, 0.02), (x + 0.06, 0.02), (x + 0.06, 0.26), (x, 0.26)) for x in (0.26, 0.38)]
BREAST_SPOTS = [_ellipse(x, y, 0.05, 0.05) for x, y in ((0.3, 0.06), (0.4, 0.16), (0.29, 0.22))]


@dataclass(frozen=True)
class Pose:
    """Where the canonical bird lands in the image: p' = centre + scale * R(angle) * (flip * p)."""

    centre: tuple[float, float]
    scale: float
    angle: float
    flip: bool

    def apply(self, pts: np.ndarray) -> list[tuple[float, float]]:
        x = -pts[:, 0] if self.flip else pts[:, 0]
        c, s = np.cos(self.angle), np.sin(self.angle)
        px = self.centre[0] + self.scale * (c * x - s * pts[:, 1])
        py = self.centre[1] + self.scale * (s * x + c * pts[:, 1])
        return list(zip(px.tolist(), py.tolist()))
