"""The inside of an open mouth, drawn for a photo whose mouth is closed.

A warp can only move the photo's pixels; a closed mouth has no inside to move. What a camera sees in
an open mouth, in the mouth's own frame (across: corner to corner, down: from the upper to the lower
inner lip), back to front:
- the throat: dark, the lips' colour at a fifth of their brightness;
- the tongue: an ellipse low in the opening, the lips' hue, lit from above;
- the upper incisors under the upper lip, a band about a sixth of the mouth's width deep, the lower
  ones above the lower lip (shallower, in the upper lip's shadow); both recede and darken toward
  the corners and show only once the lips have parted enough to see them;
- a soft shadow along the lips' inner edge.
Colours come from the photo itself, so the inside carries its light and colour cast: the teeth take
the colour of the photo's eye whites (the same tissue under the same light; the skin, brightened and
desaturated, where the eyes are too small to sample), the throat and tongue the lips' colour.
"""

from __future__ import annotations

import numpy as np

from live.warp.pixels import LUMA, sample, smoothstep
from models.face.landmarks import EYE_LEFT, EYE_RIGHT, LIP_UPPER_INNER, MOUTH_LEFT, MOUTH_RIGHT
from models.face.mesh_topology import boundary_loops, loop_arcs

INNER_CORNERS = (78, 308)          # the inner lips' corners (the mouth hole's ends)
UPPER_TEETH = 0.17                 # depth of the upper incisors' band, in mouth widths
LOWER_TEETH = 0.09
TEETH_FROM, TEETH_FULL = 0.015, 0.07   # opening (mouth widths) where the teeth start to show / fully show
TONGUE = (0.3, 0.12)               # the tongue's half-width and half-height, in mouth widths (larger reads as lip)
TOOTH_WIDTH = 0.11                 # one incisor, in mouth widths (faint gaps between them)


def eye_white_colour(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The median of the brightest quarter of the pixels inside both eye openings; None if too few."""
    import cv2
    loops = boundary_loops()
    mask = np.zeros(photo.shape[:2], np.uint8)
    for name in ("eye_left", "eye_right"):
        cv2.fillPoly(mask, [np.round(landmarks[loops[name], :2]).astype(np.int32)], 255)
    pixels = photo[mask > 0].astype(np.float64)
    if len(pixels) < 12:
        return None
    luma = pixels @ LUMA
    bright = pixels[luma >= np.percentile(luma, 75)]
    return np.median(bright, axis=0)


def mouth_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(centre, across, down, width) of the mouth in image points [N, 2+]: the inner corners' midpoint, the unit
    axis from one inner corner to the other, the unit normal pointing to the chin, the outer corners' distance."""
    p = np.asarray(points, np.float64)[:, :2]
    c0, c1 = p[INNER_CORNERS[0]], p[INNER_CORNERS[1]]
    width = float(np.linalg.norm(p[MOUTH_LEFT] - p[MOUTH_RIGHT])) + 1e-6
    axis = (c1 - c0) / (np.linalg.norm(c1 - c0) + 1e-9)
    down = np.array([-axis[1], axis[0]])
    if down @ (p[14] - p[13]) < 0:          # the lower inner lip's middle (14) lies below the upper one's (13)
        down = -down
    return 0.5 * (c0 + c1), axis, down, width


def skin_white(photo: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """A white under the photo's light where its eyes are too small to sample: the cheeks' skin, brightened and
    desaturated."""
    cheeks = sample(photo, landmarks[[EYE_LEFT["lower"], EYE_RIGHT["lower"]], :2] * 0.5
                    + landmarks[[MOUTH_LEFT, MOUTH_RIGHT], :2] * 0.5)
    skin = cheeks.mean(0)
    return 1.2 * (skin.mean() + 0.35 * (skin - skin.mean()))


class MouthInterior:
    def __init__(self, photo: np.ndarray, landmarks: np.ndarray):
        loops = boundary_loops()
        self.loop = loops["mouth"]
        lips = sample(photo, landmarks[self.loop, :2])
        lip = np.median(lips, axis=0)
        self.throat = np.clip(lip * 0.2, 6, 60)
        tongue = lip * np.array([0.85, 0.62, 0.62])
        self.tongue = np.clip(tongue * 200 / max(tongue.max(), 1), 0, 255) if tongue.max() > 200 else tongue
        white = eye_white_colour(photo, landmarks)
        if white is None:
            white = skin_white(photo, landmarks)
        # teeth are a little darker and yellower than the eye's white
        self.teeth = np.clip(white * np.array([0.93, 0.91, 0.84]), 0, 255)
        first, second = loop_arcs(self.loop, *INNER_CORNERS)
        self.upper, self.lower = (first, second) if LIP_UPPER_INNER in first else (second, first)
        # a photo with its lips a little apart keeps its own gap: the drawn inside fades in as the mouth
        # opens beyond it, so the rest frame is the photo
        self.own_opening = max(self.opening(landmarks[:, :2]), 0.0)

    def _lips(self, points: np.ndarray):
        """The mouth's frame, a map of image points into it (across, down in mouth widths), the upper and lower
        inner lips in it, and their gap at the mouth's middle."""
        centre, axis, down, width = mouth_frame(points)

        def frame_of(p):
            d = p - centre
            return d @ axis / width, d @ down / width

        ux, uy = frame_of(points[self.upper])
        lx, ly = frame_of(points[self.lower])
        gap = float(np.interp(0.0, np.sort(lx), ly[np.argsort(lx)]) - np.interp(0.0, np.sort(ux), uy[np.argsort(ux)]))
        return width, frame_of, (ux, uy), (lx, ly), gap

    def opening(self, points: np.ndarray) -> float:
        """The inner lips' gap at the mouth's middle, in mouth widths."""
        return self._lips(points)[-1]

    def draw(self, frame: np.ndarray, points: np.ndarray) -> float:
        """Fill the mouth hole of `points` [N, 2] (the frame's mesh) in place; how far the inside has faded in
        (0: nothing drawn, the lips no further apart than the photo's, 1: fully)."""
        import cv2
        lips = points[self.loop]
        x0, y0 = np.floor(lips.min(0)).astype(int) - 2
        x1, y1 = np.ceil(lips.max(0)).astype(int) + 3
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return 0.0
        width, frame_of, (ux, uy), (lx, ly), opening = self._lips(points)
        fade_in = float(smoothstep((opening - self.own_opening) / 0.04))
        if opening <= 0.005 or fade_in <= 0:
            return 0.0
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        u, v = frame_of(np.stack([xs, ys], -1))
        top = np.interp(u, np.sort(ux), uy[np.argsort(ux)])
        bottom = np.interp(u, np.sort(lx), ly[np.argsort(lx)])
        half = max(abs(ux).max(), 1e-3)
        side = np.clip(np.abs(u) / half, 0, 1)                    # 0 mid-mouth, 1 at a corner

        image = np.broadcast_to(self.throat, u.shape + (3,)).astype(np.float64).copy()
        image *= (0.7 + 0.6 * np.clip((v - top) / max(opening, 1e-3), 0, 1))[..., None] ** 0.5  # deeper is darker
        # tongue: low in the mouth, lit from above
        tongue_centre = bottom + 0.04
        t = (u / TONGUE[0]) ** 2 + ((v - tongue_centre) / TONGUE[1]) ** 2
        tongue_a = smoothstep((1.0 - t) / 0.25) * smoothstep((opening - 0.06) / 0.12)
        lit = np.clip(0.8 + 0.3 * (tongue_centre - v) / TONGUE[1], 0.55, 1.05)     # its top catches the light
        image += tongue_a[..., None] * (self.tongue * lit[..., None] - image)
        # teeth, recede and darken toward the corners
        show = smoothstep((opening - TEETH_FROM) / (TEETH_FULL - TEETH_FROM))
        across = smoothstep((0.85 - side) / 0.35)
        gaps = 1.0 - 0.18 * np.exp(-((((u / TOOTH_WIDTH) + 0.5) % 1.0 - 0.5) * 2.2) ** 2 / 0.02)
        edge_u = UPPER_TEETH * (1 - 0.12 * np.abs(np.sin(np.pi * u / TOOTH_WIDTH)))     # each tooth's rounded edge
        upper_a = smoothstep((top + edge_u - v) / 0.012) * (v >= top - 0.02) * across * show
        shade = (1.0 - 0.45 * side**2) * gaps
        image += upper_a[..., None] * (self.teeth * shade[..., None] - image)
        lower_a = smoothstep((v - (bottom - LOWER_TEETH)) / 0.012) * across * show * smoothstep((opening - 0.1) / 0.1)
        image += lower_a[..., None] * (self.teeth * 0.72 * shade[..., None] - image)
        # the lips' shadow along the inner edge
        shift = 4
        pts = np.round((lips - [x0, y0]) * (1 << shift)).astype(np.int32)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift)
        edge = max(int(round(0.04 * width)) | 1, 3)
        shadow = cv2.GaussianBlur(mask, (edge, edge), 0).astype(np.float64) / 255.0
        image *= (0.55 + 0.45 * shadow)[..., None]
        alpha = mask[..., None] / 255.0 * fade_in
        region = frame[y0:y1, x0:x1].astype(np.float64)
        frame[y0:y1, x0:x1] = np.round(region * (1 - alpha) + np.clip(image, 0, 255) * alpha).astype(np.uint8)
        return fade_in
