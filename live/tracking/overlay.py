"""Drawing what the tracker and the face model see: mesh points, head-pose axes, expression bars."""

from __future__ import annotations

import numpy as np

from models.face.landmarks import EXPRESSION_NAMES, NOSE_TIP, POSE_NAMES
from models.face.params import FaceParams

PANEL_WIDTH = 260


def draw_overlay(frame_rgb: np.ndarray, p: FaceParams, param_range: np.ndarray) -> np.ndarray:
    """The frame with the mesh and pose axes, and a panel of pose values and expression bars
    on the right. param_range [15, 2] scales each bar to its observed range."""
    import cv2
    img = np.ascontiguousarray(frame_rgb.copy())
    h, w = img.shape[:2]
    panel = np.full((h, PANEL_WIDTH, 3), 24, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    if not p.found:
        cv2.putText(panel, "no face", (10, 30), font, 0.7, (255, 80, 80), 2, cv2.LINE_AA)
        return np.concatenate([img, panel], axis=1)
    for x, y in p.landmarks[:, :2].astype(int)[::2]:
        cv2.circle(img, (int(x), int(y)), 1, (80, 255, 120), -1, cv2.LINE_AA)
    origin = p.landmarks[NOSE_TIP, :2]
    length = 0.6 * p.scale
    for axis, colour in zip(range(3), [(255, 60, 60), (60, 255, 60), (60, 120, 255)]):
        # Model axes x (right), y (down), z (away); drawn as seen by the camera.
        tip = origin + p.rotation[:2, axis] * length * (-1 if axis == 2 else 1)
        cv2.arrowedLine(img, tuple(origin.astype(int)), tuple(tip.astype(int)), colour, 2, cv2.LINE_AA, tipLength=0.15)
    y = 24
    for name, value in zip(POSE_NAMES, p.params[:3]):
        cv2.putText(panel, f"{name:>5} {value:+6.1f} deg", (10, y), font, 0.55, (230, 230, 230), 1, cv2.LINE_AA)
        y += 22
    y += 6
    bar_h = max(8, min(18, (h - y - 10) // len(EXPRESSION_NAMES) - 4))
    for i, name in enumerate(EXPRESSION_NAMES):
        lo, hi = param_range[3 + i]
        v = float(np.clip((p.params[3 + i] - lo) / max(hi - lo, 1e-9), 0, 1))
        top = y + i * (bar_h + 4)
        cv2.putText(panel, name[:11], (6, top + bar_h - 2), font, 0.4, (200, 200, 200), 1, cv2.LINE_AA)
        cv2.rectangle(panel, (100, top), (250, top + bar_h), (60, 60, 60), -1)
        cv2.rectangle(panel, (100, top), (100 + int(150 * v), top + bar_h), (90, 170, 255), -1)
    return np.concatenate([img, panel], axis=1)
