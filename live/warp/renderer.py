"""Rendering a warp avatar: the photo's face mesh moved by a parameter change, the photo warped along.

Per frame, for a change dp (raw units: degrees, standard deviations):
- expression: the photo's pose-free mesh plus dp's expression part through the shape model's
  expression basis (the mesh motion per unit of each coefficient, models/face/shape_model.py);
- head pose: the photo's rotation turned by dp's yaw, pitch and roll about a pivot behind the face
  (the head's centre, not the nose), then projected;
- around the face, rings of points follow the head's rigid motion fully near it and fading to still
  at the frame's edge, so hair, neck and background move without tearing;
- the output is the photo read through the backward map of all triangles (kernels/triangle_map.py),
  background first, then the face's triangles far to near (the near cheek covers the far one);
- eyes are filled by fans from the iris centres, so lids closing (the blink coefficients) squeeze
  the eye away; the mouth's inside, a hole of the mesh, is the photo's own where its mouth is open,
  else painted: a dark mouth with a band of teeth under the upper lip.
"""

from __future__ import annotations

import numpy as np

from kernels.triangle_map import triangle_map
from live.warp.warp_avatar import WarpAvatar
from models.face.landmarks import BROW_LEFT_MID, BROW_RIGHT_MID, EYE_LEFT, EYE_RIGHT
from models.face.mesh_topology import boundary_loops, eye_fans, face_triangles
from models.face.params import ParameterSpace
from models.face.shape_model import FaceModel, rotation_from_angles

PIVOT_DEPTH = 2.0                       # the head's centre behind the face's, in model units (RMS face radius 1)
PIVOT_DROP = 0.6                        # and below it (model y points down, toward the neck)
RINGS = ((1.15, 1.0), (1.6, 0.6), (2.3, 0.25))   # (radius / face radius, share of the head's motion)
RING_POINTS = 24
TEETH = 0.15                            # the upper teeth: this share of the opening, fading out
OPEN_MOUTH = 0.15                       # mouth area / width^2 above which the photo's own mouth is used


def _ring(centre: np.ndarray, radius: float, n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + radius * np.stack([np.cos(a), np.sin(a)], 1)


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


class WarpRenderer:
    """Normalised delta [P] -> the avatar's frame (the photo's size, uint8 RGB)."""

    def __init__(self, avatar: WarpAvatar, space: ParameterSpace, model: FaceModel | None = None):
        from scipy.spatial import Delaunay
        self.photo, self.space = avatar.photo, space
        self.model = model or FaceModel.load()
        self.h, self.w = self.photo.shape[:2]
        fit = self.model.fit(avatar.landmarks)
        self.pose0, self.scale, self.rot0, self.t = fit.pose, fit.scale, fit.rotation, fit.translation
        self.aligned = (avatar.landmarks - self.t) @ self.rot0 / self.scale        # pose-free, the photo's own
        self.pivot_model = np.array([0.0, PIVOT_DROP, PIVOT_DEPTH])
        self.pivot = self.scale * self.rot0 @ self.pivot_model + self.t          # camera frame, stays put
        loops = boundary_loops()
        self.mouth = loops["mouth"]
        oval = loops["oval"]
        src2d = avatar.landmarks[:, :2]
        centre = src2d[oval].mean(0)
        radius = float(np.linalg.norm(src2d[oval] - centre, axis=1).max())
        rings = [_ring(centre, radius * r, RING_POINTS) for r, _ in RINGS]
        self.ring_src = np.concatenate(rings)
        self.ring_share = np.concatenate([np.full(RING_POINTS, share) for _, share in RINGS])
        edge = np.linspace(0, 1, 6)
        w, h = self.w, self.h
        self.border = np.concatenate([np.stack([edge * (w + 1) - 1, np.full(6, -1.0)], 1),
                                      np.stack([edge * (w + 1) - 1, np.full(6, h)], 1),
                                      np.stack([np.full(6, -1.0), edge * (h + 1) - 1], 1),
                                      np.stack([np.full(6, w), edge * (h + 1) - 1], 1)])
        self.border = np.unique(self.border.round(3), axis=0)
        n = len(avatar.landmarks)
        # background layer: the face's outline, the rings and the frame's edge, triangulated in the photo
        bg_points = np.concatenate([src2d[oval], self.ring_src, self.border])
        bg_index = np.concatenate([oval, n + np.arange(len(self.ring_src) + len(self.border))])
        self.background = bg_index[Delaunay(bg_points).simplices]
        mouth2d = src2d[self.mouth]
        width = np.linalg.norm(mouth2d[:, 0].max() - mouth2d[:, 0].min()) + 1e-6
        self.own_mouth = _polygon_area(mouth2d) / width**2 > OPEN_MOUTH
        face = np.concatenate([face_triangles(), eye_fans()])
        if self.own_mouth:   # a fan from an extra vertex at the mouth's centre carries the photo's own mouth
            centre_index = n + len(self.ring_src) + len(self.border)
            m = self.mouth
            face = np.concatenate([face, [(centre_index, m[i], m[(i + 1) % len(m)]) for i in range(len(m))]])
        self.face = face
        self.src = np.concatenate([src2d, self.ring_src, self.border] + ([mouth2d.mean(0, keepdims=True)]
                                                                           if self.own_mouth else []))
        self.mouth_colour = self._mouth_colour()
        # lids: each eye's loop, its opening in the photo and the colour of the lid's skin (between the
        # upper lid and the brow), for covering the eye as it closes
        self.eyes = []
        for loop, eye, brow in ((loops["eye_left"], EYE_LEFT, BROW_LEFT_MID), (loops["eye_right"], EYE_RIGHT, BROW_RIGHT_MID)):
            opening = float(np.linalg.norm(src2d[eye["upper"]] - src2d[eye["lower"]]))
            x, y = np.round(0.6 * src2d[eye["upper"]] + 0.4 * src2d[brow]).astype(int)
            patch = self.photo[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].reshape(-1, 3).astype(np.float64)
            self.eyes.append((loop, eye, max(opening, 1e-3), patch.mean(0) if len(patch) else np.full(3, 128.0)))

    def _mouth_colour(self) -> np.ndarray:
        """The inside of a mouth: the lips' colour, much darker."""
        lips = self.src[self.mouth].astype(int)
        samples = self.photo[np.clip(lips[:, 1], 0, self.h - 1), np.clip(lips[:, 0], 0, self.w - 1)]
        return np.clip(samples.astype(np.float64).mean(0) * 0.3, 10, 90)

    def mesh(self, delta_raw: np.ndarray) -> np.ndarray:
        """The face's landmarks [478, 3] (camera frame, pixels) after the change."""
        shape = self.aligned + np.tensordot(delta_raw[3:], self.model.exp_basis, 1)
        rot = rotation_from_angles(*(self.pose0 + delta_raw[:3]))
        return self.scale * (shape - self.pivot_model) @ rot.T + self.pivot

    def __call__(self, delta_norm: np.ndarray) -> np.ndarray:
        import cv2
        delta_raw = np.asarray(delta_norm, np.float64) / self.space.to_norm
        face = self.mesh(delta_raw)
        turn = rotation_from_angles(*(self.pose0 + delta_raw[:3])) @ self.rot0.T
        ring3d = np.concatenate([self.ring_src, np.full((len(self.ring_src), 1), self.pivot[2])], 1)
        moved = (ring3d - self.pivot) @ turn.T + self.pivot
        ring = self.ring_src + self.ring_share[:, None] * (moved[:, :2] - self.ring_src)
        dst = np.concatenate([face[:, :2], ring, self.border] + ([face[self.mouth, :2].mean(0, keepdims=True)]
                                                                  if self.own_mouth else []))
        depth = np.zeros(len(dst))
        depth[:len(face)] = face[:, 2]
        if self.own_mouth:
            depth[-1] = face[self.mouth, 2].mean()
        order = np.argsort(-depth[self.face].mean(1), kind="stable")   # far (large z) first
        triangles = np.concatenate([self.background, self.face[order]])
        map_x, map_y = triangle_map(dst, self.src, triangles, self.h, self.w)
        frame = cv2.remap(self.photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if not self.own_mouth:
            self._paint_mouth(frame, face[self.mouth, :2])
        self._paint_lids(frame, face[:, :2])
        return frame

    def _paint_lids(self, frame: np.ndarray, points: np.ndarray) -> None:
        """An eye closing by more than its photo's opening shows lid, not a squeezed eyeball: the eye's
        polygon is covered with the lid's skin, more the more it has closed, with a dark lash line."""
        import cv2
        for loop, eye, opening, skin in self.eyes:
            closed = 1.0 - np.linalg.norm(points[eye["upper"]] - points[eye["lower"]]) / opening
            if closed < 0.15:
                continue
            alpha = float(np.clip((closed - 0.15) / 0.6, 0, 1)) ** 0.8
            poly = points[loop]
            x0, y0 = np.floor(poly.min(0)).astype(int) - 3
            x1, y1 = np.ceil(poly.max(0)).astype(int) + 4
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
            if x1 <= x0 or y1 <= y0:
                continue
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(mask, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
            mask = cv2.GaussianBlur(mask, (3, 3), 0)
            a = mask[..., None] / 255.0 * alpha
            region = frame[y0:y1, x0:x1].astype(np.float64)
            region = region * (1 - a) + skin * a
            lash = np.round((points[[eye["outer"], eye["lower"], eye["inner"]]] - [x0, y0]) * 16).astype(np.int32)
            lashes = np.zeros_like(mask)
            cv2.polylines(lashes, [lash], False, 255, 1, cv2.LINE_AA, 4)
            la = lashes[..., None] / 255.0 * alpha * 0.7
            frame[y0:y1, x0:x1] = np.round(region * (1 - la) + 40.0 * la).astype(np.uint8)

    def _paint_mouth(self, frame: np.ndarray, lips: np.ndarray) -> None:
        """The open mouth's inside: dark, with the upper teeth showing under the upper lip."""
        import cv2
        if _polygon_area(lips) < 4.0:
            return
        x0, y0 = np.floor(lips.min(0)).astype(int) - 2
        x1, y1 = np.ceil(lips.max(0)).astype(int) + 3
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
        if x1 <= x0 or y1 <= y0:
            return
        shift = 4                                                # sub-pixel polygon edges
        pts = np.round((lips - [x0, y0]) * (1 << shift)).astype(np.int32)
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [pts], 255, cv2.LINE_AA, shift)
        inside = np.full((y1 - y0, x1 - x0, 3), self.mouth_colour, np.float64)
        top = lips[:, 1].min() - y0
        opening = lips[:, 1].max() - lips[:, 1].min()
        rows = np.arange(y1 - y0)[:, None]
        teeth = np.clip(1.0 - (rows - top) / max(TEETH * opening, 1.0), 0, 1) ** 0.7   # fading downward
        inside = inside * (1 - teeth[..., None]) + np.array([222.0, 214.0, 200.0]) * teeth[..., None] * 0.9
        alpha = mask[..., None] / 255.0
        region = frame[y0:y1, x0:x1].astype(np.float64)
        frame[y0:y1, x0:x1] = np.round(region * (1 - alpha) + inside * alpha).astype(np.uint8)

    def warm_up(self) -> None:
        self(np.zeros(len(self.space.names)))
