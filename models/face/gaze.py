"""Where the eyes look, from the refined mesh's iris centres: each iris centre's offset from the middle of
its eye's corners, in eye widths, along the image's right and down (as the eye's corners lie, so a tilted
head does not read as a glance). Both eyes are averaged: people look with both.

These offsets are not angles: they are what the warp renderer moves the avatar's irises by (an eye width
is the same fraction of every face), taken relative to the user's own neutral gaze.
"""

from __future__ import annotations

import numpy as np

from models.face.landmarks import EYE_LEFT, EYE_RIGHT
from models.face.mesh_topology import IRIS_CENTRES

GAZE_NAMES = ("gaze_across", "gaze_down")


def eye_axes(points: np.ndarray, eye: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """An eye's own frame from its corners in `points` [N, 2+]: (middle of the corners, unit vector toward
    the image's right along the eye, unit vector down across it, corner-to-corner width)."""
    a, b = points[eye["outer"], :2], points[eye["inner"], :2]
    if b[0] < a[0]:
        a, b = b, a                                       # a: the corner on the image's left
    width = float(np.linalg.norm(b - a))
    right = (b - a) / max(width, 1e-9)
    down = np.array([-right[1], right[0]])                # image y points down
    return 0.5 * (a + b), right, down, width


def measure_gaze(landmarks: np.ndarray) -> np.ndarray:
    """[478, 2+] landmarks (pixels) -> [2]: (across, down) in eye widths; NaN if an eye is degenerate."""
    out = []
    for eye, iris in ((EYE_LEFT, IRIS_CENTRES["eye_left"]), (EYE_RIGHT, IRIS_CENTRES["eye_right"])):
        middle, right, down, width = eye_axes(landmarks, eye)
        if width < 1e-6:
            return np.full(2, np.nan)
        d = landmarks[iris, :2] - middle
        out.append([d @ right / width, d @ down / width])
    return np.mean(out, axis=0)
