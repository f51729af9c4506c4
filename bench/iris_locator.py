"""An iris found from the image alone: a check on the tracker's iris points, which the avatar's gaze table is
measured with (live/warp/gaze_response.py), so that the gaze rows do not only agree with themselves.

Each eye is resampled in its own frame (the tracker's eye corners and outline give where the eye is, not where the
iris is): the iris is the place where a disk of an iris's size is darkest inside the eye's opening, against the
opening's bright white. Returned like models/face/gaze.py's measure: the disk centre's offset from the middle of
the corners, in eye widths, averaged over both eyes. On real footage (lp_d0, lp_d3, lp_d10, vox_driving) its spread
is 0.95-1.15 of the tracker's across (Pearson 0.81-0.99): the two read the same visible iris.
"""

from __future__ import annotations

import numpy as np

from models.face.gaze import eye_axes
from models.face.landmarks import EYE_LEFT, EYE_RIGHT

# the tracker's eye outlines, each a closed loop from the outer corner (models/face/landmarks.py's corners)
EYE_OUTLINES = ((EYE_LEFT, (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)),
                (EYE_RIGHT, (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)))
LUMA = np.array([0.299, 0.587, 0.114])
ACROSS, DOWN = 0.7, 0.45          # the resampled window, eye widths either side of the corners' middle
SAMPLES = 64                      # across the window
IRIS_RADIUS = 0.21                # eye widths (the tracker's iris rims give 0.20-0.28 on the portraits)


def locate_gaze(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 RGB, [478, 2+] landmarks -> [2]: (across, down) in eye widths; NaN where an eye is shut."""
    import cv2
    cols = np.linspace(-ACROSS, ACROSS, SAMPLES)
    rows = np.linspace(-DOWN, DOWN, round(SAMPLES * DOWN / ACROSS))
    step = cols[1] - cols[0]
    radius = IRIS_RADIUS / step
    k = int(np.ceil(radius))
    yy, xx = np.mgrid[-k:k + 1, -k:k + 1]
    disk = (xx**2 + yy**2 <= radius**2).astype(np.float64)
    out = []
    for eye, outline in EYE_OUTLINES:
        middle, right, down, width = eye_axes(landmarks, eye)
        if width < 1e-6:
            return np.full(2, np.nan)
        u, v = np.meshgrid(cols, rows)
        where = middle + width * (u[..., None] * right + v[..., None] * down)
        patch = cv2.remap(image, where[..., 0].astype(np.float32), where[..., 1].astype(np.float32), cv2.INTER_LINEAR)
        luma = patch.astype(np.float64) @ LUMA
        loop = (landmarks[list(outline), :2] - middle) @ np.stack([right, down], 1) / width
        grid = np.stack([(loop[:, 0] + ACROSS) / step, (loop[:, 1] + DOWN) / step], 1)
        opening = np.zeros(luma.shape, np.uint8)
        cv2.fillPoly(opening, [np.round(grid * 8).astype(np.int32)], 1, shift=3)
        inside = opening > 0
        if inside.sum() < 20:
            return np.full(2, np.nan)
        dark = np.where(inside, np.clip(np.percentile(luma[inside], 90) - luma, 0, None), 0.0)
        score = cv2.filter2D(dark, -1, disk, borderType=cv2.BORDER_CONSTANT)   # the lids count as not iris
        score[~inside] = -1.0
        iy, ix = np.unravel_index(int(np.argmax(score)), score.shape)
        out.append([cols[0] + (ix + _vertex(score[iy, ix - 1:ix + 2])) * step,
                    rows[0] + (iy + _vertex(score[iy - 1:iy + 2, ix])) * step])
    return np.mean(out, axis=0)


def _vertex(three: np.ndarray) -> float:
    """The sub-sample offset of a peak from its two neighbours (a parabola's vertex); 0 at the window's edge."""
    if len(three) != 3:
        return 0.0
    a, b, c = three
    curve = a - 2 * b + c
    return float(0.5 * (a - c) / curve) if curve < 0 else 0.0
