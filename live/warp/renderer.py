"""Rendering a warp avatar: the photo's face mesh moved by a parameter change, the photo warped along.

Per frame, for a change dp (raw units: degrees, standard deviations) and the driver's gaze:
- expression: the photo's pose-free mesh plus dp's expression part through the shape model's
  expression basis (the mesh motion per unit of each coefficient, models/face/shape_model.py);
  the upper lids never pass the lower ones (a full blink closes the eye, it does not fold it);
- head pose: the photo's rotation turned by dp's yaw, pitch and roll about a pivot behind the face
  (the head's centre, not the nose), then projected;
- around the face, rings of points carry the head's rigid motion out into hair, ears and neck: each
  ring point moves as the face outline next to it does (so the outline and what lies beyond it move
  together: no seam at the temple or the hairline), by a share that fades to still toward the frame's
  edge, slower below the chin (the neck joins a body that does not turn);
- the output is the photo read through the backward map of all triangles (kernels/triangle_map.py):
  the background layer first, then the eyeballs, then the face's triangles far to near (the near cheek
  covers the far one); a face triangle the turn has turned away from the camera is drawn first, under
  everything (on top it would fold the texture over itself: the streaks at a turning cheek's contour);
- eyeballs: the eye openings filled by fans from the iris centres, drawn with the lids open (the
  blink left out) so closing lids, which are the face's own triangles, slide over an eye that keeps
  its shape and colour; the gaze moves the iris centre within the opening;
- the mouth's inside, a hole of the mesh, is the photo's own where its mouth is open, else drawn
  (live/warp/mouth_interior.py): throat, teeth in the photo's eye-white colour, tongue, shaded.
"""

from __future__ import annotations

import numpy as np

from kernels.triangle_map import triangle_map
from live.warp.mouth_interior import INNER_CORNERS as INNER_LIP_CORNERS
from live.warp.mouth_interior import MouthInterior
from live.warp.warp_avatar import WarpAvatar
from models.face.landmarks import CHIN, EXPRESSION_NAMES, EYE_LEFT, EYE_RIGHT, FOREHEAD, LIP_LOWER_INNER, LIP_UPPER_INNER
from models.face.mesh_topology import IRIS_CENTRES, boundary_loops, face_triangles, loop_arcs
from models.face.params import ParameterSpace
from models.face.shape_model import FaceModel, rotation_from_angles

PIVOT_DEPTH = 2.0                       # the head's centre behind the face's, in model units (RMS face radius 1)
PIVOT_DROP = 0.6                        # and below it (model y points down, toward the neck)
# (radius / face radius, share of the head's motion above the face (hair, ears), below it (neck), depth: 0 at
# the outline's, 1 at the head's centre (the skull curves back from the face's edge))
RINGS = ((1.15, 1.0, 0.75, 0.4), (1.6, 0.8, 0.3, 0.8), (2.3, 0.3, 0.05, 1.0))
RING_POINTS = 32
OPEN_MOUTH = 0.15                       # mouth area / width^2 above which the photo's own mouth is used
GAZE_LIMIT = (0.22, 0.12)               # the iris centre's largest move, in eye widths (across, up-down)
IRIS_RIMS = {"eye_right": (469, 470, 471, 472), "eye_left": (474, 475, 476, 477)}   # the refined mesh's iris edge
IRIS_POINTS = 10
BLINKS = tuple(3 + EXPRESSION_NAMES.index(n) for n in ("blink_left", "blink_right"))
EYES = (("eye_left", EYE_LEFT), ("eye_right", EYE_RIGHT))
# The mesh's ring above each upper lid (the lid's crease), point for point above the lid's loop from the outer
# corner in; a tracked lid often sits below the lid's visible edge, with a strip of eye white above it.
LID_CREASE = {"eye_left": (467, 260, 259, 257, 258, 286, 414), "eye_right": (247, 30, 29, 27, 28, 56, 190)}
LID_ROLL_BY = 0.25      # closed this much, a lid's edge shows the photo's lash line (found above its tracked edge)
LASH_DARKNESS = 0.35    # the lash line drawn along a closed lid's edge


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

        # lids: each eye's upper and lower arc (corner to corner); the upper lid's crease row above it
        self.lids = []
        outlines = []
        for name, eye in EYES:
            a, b = loop_arcs(loops[name], eye["outer"], eye["inner"])
            upper, lower = (a, b) if eye["upper"] in a else (b, a)
            crease = np.array(LID_CREASE[name])
            self.lids.append((eye, upper[1:-1], lower, crease))
            # the eyeball reaches up to the crease: a closing lid uncovers nothing the photo's lid hid
            # (the lid's own edge too: the eyeball's hull covers the whole eye opening whatever the crease's shape)
            outlines.append(np.concatenate([[eye["outer"]], crease, lower[::-1][:-1], upper[1:-1]]))
        upper_lip, lower_lip = loop_arcs(self.mouth, *INNER_LIP_CORNERS)
        if LIP_UPPER_INNER not in upper_lip:
            upper_lip, lower_lip = lower_lip, upper_lip
        self.closures = [((eye["outer"], eye["inner"]), upper, lower, (eye["upper"], eye["lower"]))
                         for eye, upper, lower, _ in self.lids]
        self.closures.append((INNER_LIP_CORNERS, upper_lip[1:-1], lower_lip, (LIP_UPPER_INNER, LIP_LOWER_INNER)))
        # how far the photo's own upper points already lie past the lower ones (tracked closed lips often do),
        # in units of the corner-to-corner distance: allowed, so the photo itself is left as it is
        self.closure_allowance = []
        for (a_index, b_index), upper, lower, _ in self.closures:
            a, b = src2d[a_index], src2d[b_index]
            axis = (b - a) / (np.linalg.norm(b - a) + 1e-9)
            normal = np.array([-axis[1], axis[0]])
            if normal @ (src2d[CHIN] - src2d[FOREHEAD]) < 0:
                normal = -normal
            ux, uy = (src2d[upper] - a) @ axis, (src2d[upper] - a) @ normal
            lx, ly = (src2d[lower] - a) @ axis, (src2d[lower] - a) @ normal
            order = np.argsort(lx)
            self.closure_allowance.append(np.maximum(uy - np.interp(ux, lx[order], ly[order]), 0.0)
                                          / (np.linalg.norm(b - a) + 1e-9))
        self.lash_at = {id(upper): self._lash_line(upper, crease) for _, upper, _, crease in self.lids}
        # eyeballs: extra vertices per eye: its outline and iris centre (placed with the lids open), then a
        # circle around the iris that moves with its centre, so a glance moves the iris whole instead of
        # smearing it (the outline-to-circle band takes the stretch)
        from scipy.spatial import Delaunay as _Delaunay
        self.eye_vertices = np.concatenate([np.append(o, IRIS_CENTRES[name]) for o, (name, _) in zip(outlines, EYES)])
        self.iris_slots, self.iris_rims, triangles, rims = [], [], [], []
        k, rim_start = 0, extra + len(self.eye_vertices)
        for o, (name, eye) in zip(outlines, EYES):
            centre = src2d[IRIS_CENTRES[name]]
            rim_marks = np.array(IRIS_RIMS[name])
            radius = float(np.linalg.norm(src2d[rim_marks] - centre, axis=1).mean())
            angles = np.linspace(0, 2 * np.pi, IRIS_POINTS, endpoint=False)
            offsets = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
            eye_width = float(np.linalg.norm(src2d[eye["outer"]] - src2d[eye["inner"]]))
            self.iris_slots.append(k + len(o))
            self.iris_rims.append((k + len(o), offsets, eye_width, eye))
            index = np.concatenate([extra + k + np.arange(len(o) + 1), rim_start + len(rims) * IRIS_POINTS
                                    + np.arange(IRIS_POINTS)])
            points = np.concatenate([src2d[o], centre[None], centre + offsets])
            triangles.append(index[_Delaunay(points).simplices])
            rims.append(centre + offsets)
            k += len(o) + 1
        self.eyeballs = np.concatenate(triangles)
        self.iris_src = np.concatenate(rims)
        extra += len(self.eye_vertices) + len(self.iris_src)

        mouth2d = src2d[self.mouth]
        width = np.linalg.norm(mouth2d[:, 0].max() - mouth2d[:, 0].min()) + 1e-6
        self.own_mouth = _polygon_area(mouth2d) / width**2 > OPEN_MOUTH
        self.face = face_triangles()
        # a fan from an extra vertex at the mouth's centre carries the photo's own mouth (a closed one's is drawn
        # over, but the fan still covers the hole: no pixel is left without a source)
        m = self.mouth
        self.mouth_fan = np.array([(extra, m[i], m[(i + 1) % len(m)]) for i in range(len(m))], np.int64)
        self.src = np.concatenate([src2d, self.ring_src, self.border, src2d[self.eye_vertices], self.iris_src,
                                   mouth2d.mean(0, keepdims=True)])
        self.face_front = np.sign(_signed_areas(self.model.shape()[:, :2], self.face))   # each triangle's winding, seen from the front
        self.face_photo = np.sign(_signed_areas(src2d, self.face))                       # and in the photo
        # a pixel no triangle covers (a degenerate sliver at an eye's corner, a fold at the frame's edge) shows
        # the photo's own pixel there
        ys, xs = np.indices((self.h, self.w), dtype=np.float32)
        self.identity = (xs, ys)
        self.mouth_interior = None if self.own_mouth else MouthInterior(self.photo, avatar.landmarks)

    def _lash_line(self, upper: np.ndarray, crease: np.ndarray) -> np.ndarray:
        """Per upper-lid point, how far up toward the crease (0 at the tracked edge, 1 at the crease) the photo's
        lid edge is: coming down from the crease's skin, the first point that is not skin (lashes, or the eye's
        white where a painting has no lash line), at the middle of the lash band if there is one."""
        steps = np.linspace(0.0, 1.0, 25)
        a, b = self.src2d[upper], self.src2d[crease]
        points = a[:, None] + steps[None, :, None] * (b - a)[:, None]                   # [lid points, steps, 2]
        xy = np.round(points).astype(int)
        pixels = self.photo[np.clip(xy[..., 1], 0, self.h - 1), np.clip(xy[..., 0], 0, self.w - 1)]
        pixels = pixels.astype(np.float64)
        out = np.zeros(len(upper))
        for i, row in enumerate(pixels):
            skin = row[steps >= 0.8].mean(0)
            far = np.linalg.norm(row - skin, axis=1)
            if far[steps <= 0.9].max() < 30:           # nothing but skin: the tracked edge is the lid's
                continue
            below = np.nonzero((far > 0.5 * far[steps <= 0.9].max()) & (steps <= 0.9))[0]
            first = below.max()                        # the edge nearest the crease
            band = np.arange(max(first - 3, 0), first + 1)
            luma = row[band] @ np.array([0.299, 0.587, 0.114])
            out[i] = steps[band[np.argmin(luma)]] if np.ptp(luma) > 25 else steps[first]
        return out

    def mesh(self, delta_raw: np.ndarray) -> np.ndarray:
        """The face's landmarks [478, 3] (camera frame, pixels) after the change."""
        shape = self.aligned + np.tensordot(delta_raw[3:], self.model.exp_basis, 1)
        rot = rotation_from_angles(*(self.pose0 + delta_raw[:3]))
        return self.scale * (shape - self.pivot_model) @ rot.T + self.pivot

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

    def _close_lids(self, points: np.ndarray) -> None:
        """Upper lid points never below the lower lid, upper lip never below the lower lip (each in its own
        frame): a blink asked beyond closed stays closed, and a mouth asked to close further than the photo's
        closed one stays closed (crossed lips would open a dark slit: the sneer of a calm driver)."""
        for ((a_index, b_index), upper, lower, _), allowed in zip(self.closures, self.closure_allowance):
            a, b = points[a_index], points[b_index]
            axis = (b - a) / (np.linalg.norm(b - a) + 1e-9)
            normal = np.array([-axis[1], axis[0]])
            if normal @ (points[CHIN] - points[FOREHEAD]) < 0:
                normal = -normal                  # points down the face (a closed photo's lips can be the wrong way)
            ux, uy = (points[upper] - a) @ axis, (points[upper] - a) @ normal
            lx, ly = (points[lower] - a) @ axis, (points[lower] - a) @ normal
            order = np.argsort(lx)
            floor = np.interp(ux, lx[order], ly[order]) + allowed * np.linalg.norm(b - a)
            over = uy > floor
            if over.any():
                points[upper[over]] = a + np.outer(ux[over], axis) + np.outer(floor[over], normal)

    def _eyeballs(self, delta_raw: np.ndarray, face: np.ndarray, gaze) -> tuple[np.ndarray, np.ndarray]:
        """[len(eye_vertices), 2]: the eyeballs' outlines with the lids open, iris centres moved by the gaze;
        and that open mesh [478, 3]."""
        open_raw = delta_raw.copy()
        open_raw[list(BLINKS)] = np.minimum(open_raw[list(BLINKS)], 0.0)
        shape = face if np.array_equal(open_raw, delta_raw) else self.mesh(open_raw)
        points = shape[self.eye_vertices, :2].copy()
        move = np.zeros(2)
        if gaze is not None and np.isfinite(gaze).all():
            move = np.clip(np.asarray(gaze, np.float64), -np.array(GAZE_LIMIT), GAZE_LIMIT)
        rims = []
        for slot, offsets, photo_width, eye in self.iris_rims:
            a, b = shape[eye["outer"], :2], shape[eye["inner"], :2]
            width = float(np.linalg.norm(b - a))
            right = (b - a) / (width + 1e-9) * (1 if b[0] >= a[0] else -1)      # toward the image's right
            down = np.array([-right[1], right[0]])
            if down[1] < 0:
                down = -down
            points[slot] += width * (move[0] * right + move[1] * down)
            rims.append(points[slot] + offsets * width / max(photo_width, 1e-6))
        points = np.concatenate([points] + rims)
        return points, shape

    def __call__(self, delta_norm: np.ndarray, gaze: np.ndarray | None = None) -> np.ndarray:
        """gaze: (across, down) in eye widths, the driver's iris offset from its neutral; None: the photo's."""
        import cv2
        delta_raw = np.asarray(delta_norm, np.float64) / self.space.to_norm
        face = self.mesh(delta_raw)
        face2d = face[:, :2].copy()
        self._close_lids(face2d)
        ring = self.ring_src + self._ring_motion(delta_raw)
        ring = np.clip(ring, 0.5, [self.w - 1.5, self.h - 1.5])     # past the frame's edge points it would fold
        eyes, open_shape = self._eyeballs(delta_raw, face, gaze)
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
        triangles = np.concatenate([self.background, faces[~front], self.eyeballs, faces[front]])
        src, closed = self._rolled_lids(face2d, open_shape)
        map_x, map_y = triangle_map(dst, src, triangles, self.h, self.w, uncovered=self.identity)
        frame = cv2.remap(self.photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if self.mouth_interior is not None:
            self.mouth_interior.draw(frame, face2d)
        self._draw_lashes(frame, face2d, closed)
        return frame

    def _rolled_lids(self, points: np.ndarray, open_shape: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """The source points with each closing upper lid's edge read further up the photo's lid (the tracked
        edge often has eye white above it, which must not slide down with the lid), and how closed each eye
        is (0 open as drawn in the eyeball, 1 shut)."""
        src, closed = self.src, []
        for eye, upper, lower, crease in self.lids:
            gap = np.linalg.norm(points[eye["upper"]] - points[eye["lower"]])
            open_gap = np.linalg.norm(open_shape[eye["upper"], :2] - open_shape[eye["lower"], :2])
            c = float(np.clip(1.0 - gap / max(open_gap, 1e-6), 0.0, 1.0))
            closed.append(c)
            if c > 0:
                if src is self.src:
                    src = self.src.copy()
                roll = min(c / LID_ROLL_BY, 1.0) * self.lash_at[id(upper)]
                src[upper] = self.src[upper] + roll[:, None] * (self.src[crease] - self.src[upper])
        return src, closed

    def _draw_lashes(self, frame: np.ndarray, points: np.ndarray, closed: list[float]) -> None:
        """A dark line along a closing upper lid's edge, as the lashes draw it on a shut eye."""
        import cv2
        for (eye, upper, _, _), c in zip(self.lids, closed):
            if c < 0.2:
                continue
            line = points[np.concatenate([[eye["outer"]], upper, [eye["inner"]]])]
            x0, y0 = np.floor(line.min(0)).astype(int) - 3
            x1, y1 = np.ceil(line.max(0)).astype(int) + 4
            x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.w), min(y1, self.h)
            if x1 <= x0 or y1 <= y0:
                continue
            width = np.linalg.norm(points[eye["outer"]] - points[eye["inner"]])
            mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            thick = max(int(round(0.05 * width)), 1)
            cv2.polylines(mask, [np.round((line - [x0, y0]) * 16).astype(np.int32)], False, 255, thick, cv2.LINE_AA, 4)
            a = mask[..., None] / 255.0 * LASH_DARKNESS * (c - 0.2) / 0.8
            frame[y0:y1, x0:x1] = np.round(frame[y0:y1, x0:x1] * (1 - a)).astype(np.uint8)

    def warm_up(self) -> None:
        self(np.zeros(len(self.space.names)))
