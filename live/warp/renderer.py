"""Rendering a warp avatar: the photo's face mesh moved by a parameter change, the photo warped along.

Per frame, for a change dp (raw units: degrees, standard deviations) and the driver's gaze:
- expression: the photo's pose-free mesh plus dp's expression part through the shape model's
  expression basis (the mesh motion per unit of each coefficient, models/face/shape_model.py);
  the upper lids never pass the lower ones (a full blink closes the eye, it does not fold it);
- head pose: the photo's rotation turned by dp's yaw, pitch and roll about a pivot behind the face
  (the head's centre, not the nose), then projected; each angle's change is eased past a knee, a yaw toward the
  side a turned photo hides past the tracker's range, so it is not drawn torn (live/warp/turn_limit.py);
- around the face, rings of points carry the head's turn out into hair, ears and neck: each ring point
  is turned about the pivot at the depth of the outline next to it (the first ring) or further back
  toward the head's centre (the skull curves away), so the outline and what lies beyond it move
  together (no seam at the temple or the hairline), by a share that fades toward the frame's edge and
  is smaller below the chin (the neck joins a body that does not turn);
- the output is the photo read through the backward map of all triangles (kernels/triangle_map.py):
  the background layer first (it reads a plate, live/warp/plate.py: where a turned photo's far cheek lies beyond
  the outline, the photo with that cheek painted out by the background mirrored in, so that a turn shows the
  background beside the face, not the cheek and its eye corner a second time), then every face triangle wound
  against its frontal winding (turned away by the turn, or hidden behind the nose or a cheek in a turned photo: on
  top they fold the texture over the face, the streaks at a turning cheek's contour), then the eyeballs, then the
  face's other triangles far to near (the near cheek covers the far one); a pixel no triangle covers reads the
  photo's own; the frame is drawn at the size it is shown (set_scale: a 512 px output of a 720 px photo fills half
  the pixels), and smaller where a slow machine cannot keep up (live/pipeline/render_budget.py);
- eyes (live/warp/eyes.py): eyeballs drawn with the lids open under the face's triangles, so closing lids
  slide over an eye that keeps its shape and colour; a blink brings the upper lid down in the photo's lid
  skin with a lash line, and shuts the eye when the driver's does; the gaze moves the iris, by the move this
  avatar's eyes are seen to make for the driver's (live/warp/gaze_response.py); lids and lips meet, never cross;
- the mouth's inside, a hole of the mesh, is the photo's own where its mouth is open, else drawn
  (live/warp/mouth_interior.py): throat, teeth in the photo's eye-white colour, tongue, shaded; with the driver's
  mouth given (`--mouth driver`), the driver's own inside goes over the drawn one where the driver's lips are
  apart, in the photo's light (live/warp/driver_mouth.py).
"""

from __future__ import annotations

import numpy as np

from kernels.triangle_map import triangle_map
from live.warp.driver_mouth import DriverMouth, MouthPatch
from live.warp.eyes import EXP_BLINKS, Closures, WarpEyes, blink_gains, closing_blink_rows
from live.warp.gaze_response import GazeResponse
from live.warp.lids import LidPainter
from live.warp.mouth_interior import MouthInterior
from live.warp.plate import BackgroundPlate
from live.warp.turn_limit import TurnLimit
from live.warp.warp_avatar import WarpAvatar
from models.face.mesh_topology import boundary_loops, face_triangles
from models.face.params import ParameterSpace
from models.face.shape_model import FaceModel, rotation_from_angles

PIVOT_DEPTH = 2.0                       # the head's centre behind the face's, in model units (RMS face radius 1)
PIVOT_DROP = 0.6                        # and below it (model y points down, toward the neck)
# (radius / face radius, share of the head's motion above the face (hair, ears), below it (neck), depth: 0 at
# the outline's, 1 at the head's centre (the skull curves back from the face's edge))
RINGS = ((1.15, 1.0, 0.75, 0.4), (1.6, 0.8, 0.3, 0.8), (2.3, 0.3, 0.05, 1.0))
RING_POINTS = 32
OPEN_MOUTH = 0.15                       # mouth area / width^2 above which the photo's own mouth is used


def _ring(centre: np.ndarray, radius: float, n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return centre + radius * np.stack([np.cos(a), np.sin(a)], 1)


def _polygon_area(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


class WarpRenderer:
    """Normalised delta [P] (and a gaze) -> the avatar's frame (the photo's size, uint8 RGB)."""

    def __init__(self, avatar: WarpAvatar, space: ParameterSpace, model: FaceModel | None = None,
                 turned_away_behind: bool = True):
        from scipy.spatial import Delaunay
        self.photo, self.space = avatar.photo, space
        self.model = model or FaceModel.load()
        self.turned_away_behind = turned_away_behind
        self.h, self.w = self.photo.shape[:2]
        fit = self.model.fit(avatar.landmarks)
        self.pose0, self.scale, self.rot0, self.t = fit.pose, fit.scale, fit.rotation, fit.translation
        self.turn_limit = TurnLimit(float(self.pose0[0]))     # a turn eased before the warp tears (live/warp/turn_limit.py)
        self.aligned = (avatar.landmarks - self.t) @ self.rot0 / self.scale        # pose-free, the photo's own
        self.pivot_model = np.array([0.0, PIVOT_DROP, PIVOT_DEPTH])
        self.pivot = self.scale * self.rot0 @ self.pivot_model + self.t          # camera frame, stays put
        loops = boundary_loops()
        self.mouth = loops["mouth"]
        self.oval = oval = loops["oval"]
        n = len(avatar.landmarks)
        src2d = avatar.landmarks[:, :2]
        self.src2d = src2d
        self.landmarks_z = avatar.landmarks[:, 2]

        # rings: each point follows the outline point at its angle around the face's centre
        centre = src2d[oval].mean(0)
        radius = float(np.linalg.norm(src2d[oval] - centre, axis=1).max())
        rings = [_ring(centre, radius * r, RING_POINTS) for r, _, _, _ in RINGS]
        self.ring_src = np.concatenate(rings)
        up = self.rot0 @ np.array([0.0, -1.0, 0.0])                  # the face's up, in the photo
        up2d = up[:2] / (np.linalg.norm(up[:2]) + 1e-9)
        towards = (self.ring_src - centre) / (np.linalg.norm(self.ring_src - centre, axis=1, keepdims=True) + 1e-9)
        above = np.clip(0.5 + 0.5 * (towards @ up2d) * 1.5, 0, 1)    # 1 above the face, 0 below the chin
        head = np.concatenate([np.full(RING_POINTS, a) for _, a, _, _ in RINGS])
        neck = np.concatenate([np.full(RING_POINTS, b) for _, _, b, _ in RINGS])
        self.ring_depth = np.concatenate([np.full(RING_POINTS, d) for _, _, _, d in RINGS])
        self.ring_level = np.repeat(np.arange(len(RINGS)), RING_POINTS)              # which ring, inner first
        self.ring_share = neck + (head - neck) * above
        outline_angle = np.arctan2(*(src2d[oval] - centre)[:, ::-1].T)
        ring_angle = np.arctan2(*(self.ring_src - centre)[:, ::-1].T)
        order = np.argsort(outline_angle)
        sorted_angle = outline_angle[order]
        pos = np.searchsorted(sorted_angle, ring_angle) % len(order)
        prev = (pos - 1) % len(order)
        span = (sorted_angle[pos] - sorted_angle[prev]) % (2 * np.pi)
        self.ring_from = np.stack([order[prev], order[pos]], 1)                       # outline neighbours
        after = ((ring_angle - sorted_angle[prev]) % (2 * np.pi)) / np.maximum(span, 1e-9)
        self.ring_weight = np.stack([1 - after, after], 1)
        # ring points beyond the frame would put the triangulation's hull outside the frame's edge points and
        # leave slivers of the frame uncovered: only those inside it are kept
        inside = ((self.ring_src >= 1).all(1) & (self.ring_src[:, 0] <= self.w - 2) & (self.ring_src[:, 1] <= self.h - 2))
        self.ring_src, self.ring_share, self.ring_depth = self.ring_src[inside], self.ring_share[inside], self.ring_depth[inside]
        self.ring_from, self.ring_weight = self.ring_from[inside], self.ring_weight[inside]
        self.ring_level = self.ring_level[inside]

        edge = np.linspace(0, 1, 6)
        w, h = self.w, self.h
        self.border = np.concatenate([np.stack([edge * (w + 1) - 1, np.full(6, -1.0)], 1),
                                      np.stack([edge * (w + 1) - 1, np.full(6, h)], 1),
                                      np.stack([np.full(6, -1.0), edge * (h + 1) - 1], 1),
                                      np.stack([np.full(6, w), edge * (h + 1) - 1], 1)])
        self.border = np.unique(self.border.round(3), axis=0)
        # background layer: the face's outline, the rings and the frame's edge, triangulated in the photo
        bg_points = np.concatenate([src2d[oval], self.ring_src, self.border])
        bg_index = np.concatenate([oval, n + np.arange(len(self.ring_src) + len(self.border))])
        background = bg_index[Delaunay(bg_points).simplices]
        # triangles across the face's inside (all three corners on the outline) would be drawn and then covered
        # by the face's own: a third of the frame's fill for nothing
        self.background = background[~np.isin(background, oval).all(1)]
        extra = n + len(self.ring_src) + len(self.border)

        self.eyes = WarpEyes(self.photo, src2d, extra)       # eyeballs, lid rolling, lashes (live/warp/eyes.py)
        self.gaze_response = GazeResponse(avatar.gaze_seen_across)   # the driver's seen glance -> the iris move
        self.closures = Closures(src2d, self.eyes.lids)      # lids and lips that meet, never cross
        self.lid_painter = LidPainter(self.photo, src2d, self.eyes.lids, self.eyes.lash_at)   # live/warp/lids.py
        self.closing_rows = closing_blink_rows(self.model.exp_basis, self.model.mean)   # a blink, not a squint
        self.blink_gain = np.ones(len(EXP_BLINKS))        # (mesh() reads the gain that blink_gains measures with it)
        self.blink_gain = blink_gains(self.mesh, fit.params, self.model.param_range[:, 1])
        extra += len(self.eyes.src)

        mouth2d = src2d[self.mouth]
        width = np.linalg.norm(mouth2d[:, 0].max() - mouth2d[:, 0].min()) + 1e-6
        self.own_mouth = _polygon_area(mouth2d) / width**2 > OPEN_MOUTH
        self.face = face_triangles()
        # a fan from an extra vertex at the mouth's centre carries the photo's own mouth (a closed one's is drawn
        # over, but the fan still covers the hole: no pixel is left without a source)
        m = self.mouth
        self.mouth_fan = np.array([(extra, m[i], m[(i + 1) % len(m)]) for i in range(len(m))], np.int64)
        self.src = np.concatenate([src2d, self.ring_src, self.border, self.eyes.src, mouth2d.mean(0, keepdims=True)])
        self.face_front = np.sign(_signed_areas(self.model.shape()[:, :2], self.face))   # each triangle's winding, seen from the front
        self.plate = BackgroundPlate(self.photo, self.src2d, self.face, self.oval, self.background, self.src)
        self.set_scale(1.0)
        self.mouth_interior = None if self.own_mouth else MouthInterior(self.photo, avatar.landmarks)
        self.driver_mouth = None if self.own_mouth else DriverMouth(self.photo, avatar.landmarks)

    def set_scale(self, scale: float) -> None:
        """Draw frames at `scale` of the photo's size (at most 1): the frame is read from the full-size photo
        straight at the size it is shown (the output's letterbox, or a slow machine's lower resolution), so a
        smaller frame costs fewer pixels, not a full-size one and a resize."""
        if not 0 < scale <= 1:
            raise ValueError(f"the warp's frame scale must lie in (0, 1], got {scale}")
        self.out_h, self.out_w = max(round(self.h * scale), 1), max(round(self.w * scale), 1)
        self.to_out = np.array([self.out_w / self.w, self.out_h / self.h])    # photo pixels -> frame pixels
        # a pixel no triangle covers (a degenerate sliver at an eye's corner, a fold at the frame's edge) shows
        # the photo's own pixel there; pixel centres sit at integer coordinates in both
        ys, xs = np.indices((self.out_h, self.out_w), dtype=np.float32)
        self.identity = ((xs + 0.5) / np.float32(self.to_out[0]) - 0.5, (ys + 0.5) / np.float32(self.to_out[1]) - 0.5)

    def _in_frame(self, points: np.ndarray) -> np.ndarray:
        """Photo pixel coordinates -> the frame's (the same where the scale is 1)."""
        return points if self.out_w == self.w and self.out_h == self.h else (points + 0.5) * self.to_out - 0.5

    def _turned_outline(self, delta_raw: np.ndarray) -> np.ndarray:
        """[outline points, 2] the outline moved by the head's turn alone (no expression)."""
        rot = rotation_from_angles(*(self.pose0 + delta_raw[:3]))
        return (self.scale * (self.aligned[self.oval] - self.pivot_model) @ rot.T + self.pivot)[:, :2]

    def mesh(self, delta_raw: np.ndarray) -> np.ndarray:
        """The face's landmarks [478, 3] (camera frame, pixels) after the change. A closing blink is drawn as one
        (the upper lid travels, lower lid and brows stay: live/warp/eyes.py closing_blink_rows), scaled so that the lids
        meet where a real shut eye is tracked (blink_gains); a widening is the shape model's own motion."""
        expression = np.array(delta_raw[3:], np.float64)
        lids = list(EXP_BLINKS)
        closing = np.maximum(expression[lids], 0.0) * self.blink_gain
        expression[lids] = np.minimum(expression[lids], 0.0)      # a widening: the shape model's own motion
        shape = (self.aligned + np.tensordot(expression, self.model.exp_basis, 1)
                 + np.tensordot(closing, self.closing_rows, 1))
        rot = rotation_from_angles(*(self.pose0 + delta_raw[:3]))
        return self.scale * (shape - self.pivot_model) @ rot.T + self.pivot

    @property
    def lids(self) -> list:
        return self.eyes.lids

    def _close_lids(self, points: np.ndarray) -> None:
        """Lids and lips that meet, never cross (live/warp/eyes.py: Closures)."""
        self.closures.apply(points)

    def _ring_motion(self, delta_raw: np.ndarray) -> np.ndarray:
        """[ring points, 2] how far the head's turn alone moves each ring point (no expression: a jaw opening
        moves the chin, not the neck): the point at its depth (the outline's next to it, toward the head's
        centre further out) turned about the pivot, by its share."""
        turn = rotation_from_angles(*(self.pose0 + delta_raw[:3])) @ self.rot0.T
        outline_z = self.landmarks_z[self.oval]
        z = outline_z[self.ring_from[:, 0]] * self.ring_weight[:, 0] + outline_z[self.ring_from[:, 1]] * self.ring_weight[:, 1]
        z = z + self.ring_depth * (self.pivot[2] - z)
        points = np.concatenate([self.ring_src, z[:, None]], 1)
        moved = (points - self.pivot) @ turn.T + self.pivot
        return self.ring_share[:, None] * (moved[:, :2] - self.ring_src)

    def __call__(self, delta_norm: np.ndarray, gaze: np.ndarray | None = None,
                 mouth: MouthPatch | None = None) -> np.ndarray:
        """gaze: (across, down) in eye widths, the driver's iris offset from its neutral; None: the photo's.
        mouth: the driver's mouth (live/warp/driver_mouth.py) to show inside an opening closed photo mouth; None:
        the drawn inside alone."""
        import cv2
        delta_raw = self.turn_limit(np.asarray(delta_norm, np.float64) / self.space.to_norm)
        face = self.mesh(delta_raw)
        face2d = face[:, :2].copy()
        self._close_lids(face2d)
        ring = self.ring_src + self._ring_motion(delta_raw)
        ring = np.clip(ring, 0.5, [self.w - 1.5, self.h - 1.5])     # past the frame's edge points it would fold
        open_raw = self.eyes.open_lids(delta_raw)
        open_shape = face if np.array_equal(open_raw, delta_raw) else self.mesh(open_raw)
        eyes = self.eyes.place(open_shape, self.gaze_response(gaze))
        dst = np.concatenate([face2d, ring, self.border, eyes, face2d[self.mouth].mean(0, keepdims=True)])
        faces = np.concatenate([self.face, self.mouth_fan])
        depth = np.zeros(len(dst))
        depth[:len(face)] = face[:, 2]
        depth[-1] = face[self.mouth, 2].mean()
        front = np.ones(len(faces), bool)
        if self.turned_away_behind:
            # a triangle wound against its frontal winding faces away from the camera (turned away by the turn,
            # or hidden behind the nose or a cheek in a turned photo): drawn first, under everything, so it fills
            # what nothing else covers but never folds its texture over the visible face
            now = np.sign(_signed_areas(dst, self.face))
            front[:len(self.face)] = now == self.face_front
        order = np.argsort(-depth[faces].mean(1), kind="stable")   # far (large z) first
        faces = faces[order]
        front = front[order]
        triangles = np.concatenate([self.plate.triangles, faces[~front], self.eyes.triangles, faces[front]])
        src, closed = self.eyes.rolled(self.src, face2d, open_shape)
        turned = self._turned_outline(delta_raw)
        src = np.concatenate([src, self.plate.vertex_sources(turned)])
        self.plate.paint(float(np.abs(turned - self.src2d[self.oval]).max()))
        dst = np.concatenate([dst, dst[self.plate.vertices]])
        map_x, map_y = triangle_map(self._in_frame(dst), src, triangles, self.out_h, self.out_w,
                                    uncovered=self.identity)
        frame = cv2.remap(self.plate.sources, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        face2d = self._in_frame(face2d)
        if self.mouth_interior is not None:
            shown = self.mouth_interior.draw(frame, face2d)
            if mouth is not None:
                self.driver_mouth.driver_light(mouth)      # every frame: the driver's light, followed while closed
                if shown > 0:
                    self.driver_mouth.draw(frame, face2d, mouth, shown)
        self.lid_painter.draw(frame, face2d, closed)
        return frame

    def warm_up(self) -> None:
        """One frame, and the driver's mouth cut and drawn once, before the clock starts: their first calls in a
        process cost about 16 ms (a dropped frame at the start of a run)."""
        self(np.zeros(len(self.space.names)))
        if self.driver_mouth is not None:
            self.driver_mouth.warm_up(self.photo, self.src2d)
