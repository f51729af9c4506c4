"""Small pixel helpers the warp's drawn parts share (eyes, lids, mouth): brightness, reading a photo at points,
a smooth ramp, and the box a drawing touches."""

from __future__ import annotations

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114])          # Rec. 601 brightness of an RGB colour


def smoothstep(x):
    """0 below 0, 1 above 1, a smooth S between (no kink where a drawn part starts or ends)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def sample(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The photo's pixels [..., 3] (float) at points [..., 2] (x, y), rounded, clamped to the frame."""
    h, w = photo.shape[:2]
    p = np.round(points).astype(int)
    return photo[np.clip(p[..., 1], 0, h - 1), np.clip(p[..., 0], 0, w - 1)].astype(np.float64)


def clamped_box(points: np.ndarray, margin: float, shape: tuple) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1): the pixels within `margin` of the points' bounds, inside a frame of `shape`; None if
    that is empty."""
    h, w = shape[:2]
    x0, y0 = np.floor(points.min(0) - margin).astype(int)
    x1, y1 = np.ceil(points.max(0) + margin).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)
