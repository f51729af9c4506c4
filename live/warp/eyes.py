"""The warp avatar's eyes and the openings that must not cross (live/warp/renderer.py draws with them).

- Closures: each eye's upper lid and the upper lip never pass below their lower partners, in the
  opening's own frame (a blink asked beyond closed stays closed; a mouth asked to close beyond the
  photo's closed one stays closed: crossed lips open a dark slit). The photo's own overlap, which
  tracked closed lips often have, is allowed so the photo is left as it is.
- Eyes: each eyeball is drawn under the face's triangles with its lids open (the blink left out),
  reaching up to the lid's crease, so closing lids (the face's own triangles) slide over an eye that
  keeps its shape and colour. A circle around the iris moves with the iris centre by the gaze, so a
  glance moves the iris whole; the band out to the eye's outline takes the stretch.
- A closing lid's edge reads the photo further up: the tracked lid often has a strip of eye white
  above it, which must not slide down with the lid; the lid's real edge (its lash line, or the white's
  top where a painting has no lashes) is found at avatar creation.
- A blink is drawn as one: the upper lid comes down, the lower lid and the brows stay nearly still
  (closing_blink_rows), and the lids meet when the request reaches the blink the tracker reads on real
  shut eyes (blink_gains). The closing lid's skin and lashes are drawn by live/warp/lids.py.
"""

from __future__ import annotations

import numpy as np

from live.warp.mouth_interior import INNER_CORNERS as INNER_LIP_CORNERS
from live.warp.pixels import LUMA, sample, smoothstep
from models.face.gaze import eye_axes
from models.face.landmarks import (CHIN, EXPRESSION_NAMES, EYE_LEFT, EYE_RIGHT, FOREHEAD, LIP_LOWER_INNER, LIP_UPPER_INNER,
                                   POSE_NAMES)
from models.face.mesh_topology import IRIS_CENTRES, boundary_loops, loop_arcs

GAZE_LIMIT = (0.22, 0.12)               # the iris centre's largest move, in eye widths (across, up-down)
IRIS_MARGIN = 0.05                      # eye widths the iris's rim keeps inside the eyeball's outline
IRIS_RIMS = {"eye_right": (469, 470, 471, 472), "eye_left": (474, 475, 476, 477)}   # the refined mesh's iris edge
IRIS_POINTS = 10
EXP_BLINKS = tuple(EXPRESSION_NAMES.index(n) for n in ("blink_left", "blink_right"))   # rows of the expression basis
BLINKS = tuple(len(POSE_NAMES) + k for k in EXP_BLINKS)                                 # the same in the 15-vector
EYES = (("eye_left", EYE_LEFT), ("eye_right", EYE_RIGHT))
# The mesh's ring above each upper lid (the lid's crease), point for point above the lid's loop from the outer
# corner in; a tracked lid often sits below the lid's visible edge, with a strip of eye white above it.
LID_CREASE = {"eye_left": (467, 260, 259, 257, 258, 286, 414), "eye_right": (247, 30, 29, 27, 28, 56, 190)}
LID_ROLL_BY = 0.25      # closed this much, a lid's edge shows the photo's lash line (found above its tracked edge)
# In a real blink the upper lid travels and the lower one hardly moves, but the tracker's lower-lid points follow
# its upper ones (its landmarks are coupled), so the shape model's blink lifts the lower lid by half the upper lid's
# travel. Drawn, that pushes the lower lid's skin up over the eye: a squint. The lower lid keeps this share of it.
LOWER_LID_SHARE = 0.2
# Likewise its brow points follow the lids down (by more than the lid's own travel per unit): drawn, a blink lowered
# the brows and the tracker read the face as tilting forward (up to 6 degrees of pitch on a full blink). What lies
# above the lid's crease keeps this share of the blink's motion.
BROW_SHARE = 0.2
LID_REGION = 1.4        # eye widths from the eye's centre within which the blink's motion is reshaped (fading 0.3 on)


def closing_blink_rows(exp_basis: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """[2, N, 3] each closing blink's motion as drawn (EXP_BLINKS order): below the eye (the lower lid and the skin
    under it) cut to LOWER_LID_SHARE, above the lid's crease (the brows) to BROW_SHARE, both with smooth edges; the
    upper lid's edge takes what its lower lid lost, so the gap closed per unit of blink is the same and the lids
    meet lower. A widening is drawn with the shape model's own rows."""
    out = exp_basis[list(EXP_BLINKS)].copy()
    loops = boundary_loops()
    for motion, (name, eye) in zip(out, EYES):
        upper, lower = _lid_arcs(loops[name], eye)
        centre, right, down, width = eye_axes(mean, eye)
        offset = mean[:, :2] - centre
        along, depth = offset @ right, offset @ down
        near = smoothstep((LID_REGION + 0.3 - np.linalg.norm(offset, axis=1) / width) / 0.3)
        crease = mean[list(LID_CREASE[name]), :2] - centre
        order = np.argsort(crease @ right)
        crease_height = np.interp(along, (crease @ right)[order], -(crease @ down)[order])   # at each point's place
        below = smoothstep(depth / (0.1 * width)) * near
        above = smoothstep((-depth / np.maximum(crease_height, 1e-9) - 1.0) / 0.3) * near
        before = motion.copy()
        motion *= (1 - (1 - LOWER_LID_SHARE) * below - (1 - BROW_SHARE) * above)[:, None]
        lost = before[lower] - motion[lower]                   # what the lower lid no longer travels, per point
        lx, ux = mean[lower, :2] @ right, mean[upper, :2] @ right
        o = np.argsort(lx)
        motion[upper] = before[upper] - np.stack([np.interp(ux, lx[o], lost[o, d]) for d in range(3)], 1)
    return out


def _lid_arcs(loop: np.ndarray, eye: dict) -> tuple[np.ndarray, np.ndarray]:
    """An eye's (upper lid without the corners, lower lid with both)."""
    a, b = loop_arcs(loop, eye["outer"], eye["inner"])
    upper, lower = (a, b) if eye["upper"] in a else (b, a)
    return upper[1:-1], lower


def blink_gains(mesh, own: np.ndarray, shut: np.ndarray) -> np.ndarray:
    """Per eye (BLINKS order), the factor on a closing blink request that makes the lids meet at the blink the
    tracker reads on real shut eyes (`shut`, the footage's 99th percentile) rather than where the shape model's
    lids meet (about 0.5 further: the tracker keeps a gap on a shut eye). Without it a driver's full blink
    leaves the avatar's eyes a quarter open. `mesh(delta_raw)` -> [N, 2+] points; `own`: the photo's params."""
    gains = []
    for (_, eye), k in zip(EYES, BLINKS):
        step = np.zeros(len(own))
        step[k] = 1.0
        gap = [(p[eye["lower"], :2] - p[eye["upper"], :2]) @ eye_axes(p, eye)[2] for p in (mesh(0 * step), mesh(step))]
        rate = gap[0] - gap[1]                                  # the gap closed per unit of blink
        to_shut = shut[k] - own[k]
        meets = gap[0] / rate if rate > 1e-9 else np.inf
        gains.append(float(np.clip(meets / to_shut, 1.0, 2.0)) if to_shut > 0.5 and np.isfinite(meets) else 1.0)
    return np.array(gains)


def _down_frame(points: np.ndarray, a_index: int, b_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An opening's frame: its first corner, the axis to its second, and the normal pointing down the face."""
    a, b = points[a_index], points[b_index]
    axis = (b - a) / (np.linalg.norm(b - a) + 1e-9)
    normal = np.array([-axis[1], axis[0]])
    if normal @ (points[CHIN] - points[FOREHEAD]) < 0:
        normal = -normal                  # down the face (a closed photo's lips can lie the wrong way round)
    return a, axis, normal


class Closures:
    """Openings whose upper edge may meet, never pass, the lower one: both eyes and the inner lips."""

    def __init__(self, src2d: np.ndarray, lids: list):
        mouth = boundary_loops()["mouth"]
        upper_lip, lower_lip = loop_arcs(mouth, *INNER_LIP_CORNERS)
        if LIP_UPPER_INNER not in upper_lip:
            upper_lip, lower_lip = lower_lip, upper_lip
        self.items = [((eye["outer"], eye["inner"]), upper, lower, (eye["upper"], eye["lower"]))
                      for eye, upper, lower, _ in lids]
        self.items.append((INNER_LIP_CORNERS, upper_lip[1:-1], lower_lip, (LIP_UPPER_INNER, LIP_LOWER_INNER)))
        # how far the photo's own upper points already lie past the lower ones, in corner-to-corner distances
        self.allowance = [np.maximum(*self._over(src2d, corners, upper, lower)[:1], 0.0)
                          for corners, upper, lower, _ in self.items]

    @staticmethod
    def _over(points, corners, upper, lower):
        """(how far each upper point lies below the lower edge, in corner distances; frame; coordinates)."""
        a, axis, normal = _down_frame(points, *corners)
        span = np.linalg.norm(points[corners[1]] - points[corners[0]]) + 1e-9
        ux, uy = (points[upper] - a) @ axis, (points[upper] - a) @ normal
        lx, ly = (points[lower] - a) @ axis, (points[lower] - a) @ normal
        order = np.argsort(lx)
        floor = np.interp(ux, lx[order], ly[order])
        return (uy - floor) / span, (a, axis, normal, span), (ux, floor)

    def apply(self, points: np.ndarray) -> None:
        """Move, in place, every upper point that lies past its lower edge (beyond the photo's own) onto it."""
        for (corners, upper, lower, _), allowed in zip(self.items, self.allowance):
            past, (a, axis, normal, span), (ux, floor) = self._over(points, corners, upper, lower)
            over = past > allowed
            if over.any():
                limit = floor[over] + allowed[over] * span
                points[upper[over]] = a + np.outer(ux[over], axis) + np.outer(limit, normal)


def _across_limits(src2d: np.ndarray, outline: np.ndarray, rim: np.ndarray, eye: dict) -> tuple[float, float]:
    """How far (eye widths) an iris can move toward the image's left and right before its rim comes within
    IRIS_MARGIN of the eyeball's outline, along the line through the iris centre in the photo: past it, the triangles
    between rim and outline fold and the iris is pressed into a dark sliver at the eye's corner."""
    import cv2
    _, right, _, width = eye_axes(src2d, eye)
    hull = cv2.convexHull(src2d[outline].astype(np.float32))
    centre = rim.mean(0)
    radius = float(np.linalg.norm(rim - centre, axis=1).mean())
    reach = np.arange(0.0, 1.5, 0.005) * width              # along the line from the iris centre
    out = []
    for sign in (-1.0, 1.0):
        line = centre + np.outer(reach, sign * right)
        outside = [cv2.pointPolygonTest(hull, (float(x), float(y)), False) < 0 for x, y in line]
        edge = reach[outside.index(True)] if True in outside else reach[-1]
        out.append(float(np.clip((edge - radius) / width - IRIS_MARGIN, 0.0, GAZE_LIMIT[0])))
    return out[0], out[1]


class WarpEyes:
    """The eyeballs' extra vertices, their triangles, lid rolling and lash lines, for one photo."""

    def __init__(self, photo: np.ndarray, src2d: np.ndarray, first_vertex: int):
        from scipy.spatial import Delaunay
        self.photo, self.src2d = photo, src2d
        loops = boundary_loops()
        self.lids, outlines = [], []
        for name, eye in EYES:
            upper, lower = _lid_arcs(loops[name], eye)
            crease = np.array(LID_CREASE[name])
            self.lids.append((eye, upper, lower, crease))
            # the eyeball reaches up to the crease (a closing lid uncovers nothing the photo's lid hid) and takes
            # the lid's own edge too (its hull covers the whole opening whatever the crease's shape)
            outlines.append(np.concatenate([crease, lower, upper]))   # (lower has both corners)
        self.lash_at = [self._lash_line(upper, crease) for _, upper, _, crease in self.lids]
        self.vertices = np.concatenate([np.append(o, IRIS_CENTRES[name]) for o, (name, _) in zip(outlines, EYES)])
        self.iris_rims, triangles, rims = [], [], []
        self.across_limits = []        # per eye, how far its iris may move to the image's left and right
        k, rim_start = 0, first_vertex + len(self.vertices)
        for o, (name, eye) in zip(outlines, EYES):
            centre = src2d[IRIS_CENTRES[name]]
            radius = float(np.linalg.norm(src2d[np.array(IRIS_RIMS[name])] - centre, axis=1).mean())
            angles = np.linspace(0, 2 * np.pi, IRIS_POINTS, endpoint=False)
            offsets = radius * np.stack([np.cos(angles), np.sin(angles)], 1)
            eye_width = float(np.linalg.norm(src2d[eye["outer"]] - src2d[eye["inner"]]))
            self.iris_rims.append((k + len(o), offsets, eye_width, eye))
            index = np.concatenate([first_vertex + k + np.arange(len(o) + 1),
                                    rim_start + len(rims) * IRIS_POINTS + np.arange(IRIS_POINTS)])
            triangles.append(index[Delaunay(np.concatenate([src2d[o], centre[None], centre + offsets])).simplices])
            rims.append(centre + offsets)
            self.across_limits.append(_across_limits(src2d, o, centre + offsets, eye))
            k += len(o) + 1
        self.triangles = np.concatenate(triangles)
        self.src = np.concatenate([src2d[self.vertices]] + rims)              # the extra vertices' sources

    def _lash_line(self, upper: np.ndarray, crease: np.ndarray) -> np.ndarray:
        """Per upper-lid point, how far up toward the crease (0 at the tracked edge, 1 at the crease) the photo's
        lid edge is: coming down from the crease's skin, the first point that is not skin (lashes, or the eye's
        white where a painting has no lash line), at the middle of the lash band if there is one."""
        steps = np.linspace(0.0, 1.0, 25)
        a, b = self.src2d[upper], self.src2d[crease]
        pixels = sample(self.photo, a[:, None] + steps[None, :, None] * (b - a)[:, None])    # [lid points, steps, 3]
        out = np.zeros(len(upper))
        for i, row in enumerate(pixels):
            far = np.linalg.norm(row - row[steps >= 0.8].mean(0), axis=1)
            if far[steps <= 0.9].max() < 30:           # nothing but skin: the tracked edge is the lid's
                continue
            first = np.nonzero((far > 0.5 * far[steps <= 0.9].max()) & (steps <= 0.9))[0].max()  # nearest the crease
            band = np.arange(max(first - 3, 0), first + 1)
            luma = row[band] @ LUMA
            out[i] = steps[band[np.argmin(luma)]] if np.ptp(luma) > 25 else steps[first]
        return out

    @staticmethod
    def open_lids(delta_raw: np.ndarray) -> np.ndarray:
        """The change with the blinks left out (a widening kept): the eyeballs' shape."""
        open_raw = delta_raw.copy()
        open_raw[list(BLINKS)] = np.minimum(open_raw[list(BLINKS)], 0.0)
        return open_raw

    def place(self, open_shape: np.ndarray, gaze) -> np.ndarray:
        """The extra vertices' positions [len(src), 2]: outlines from the open mesh, irises moved by the gaze
        (across, down in eye widths)."""
        points = open_shape[self.vertices, :2].copy()
        move = np.zeros(2)
        if gaze is not None and np.isfinite(gaze).all():
            move = np.clip(np.asarray(gaze, np.float64), -np.array(GAZE_LIMIT), GAZE_LIMIT)
        rims = []
        # both eyes stop where the first reaches its outline: eyes move together (one stopped and one going on
        # reads as a turn of the head)
        across = float(np.clip(move[0], -min(a for a, _ in self.across_limits), min(b for _, b in self.across_limits)))
        for slot, offsets, photo_width, eye in self.iris_rims:
            _, right, down, width = eye_axes(open_shape, eye)          # the gaze's own axes (models/face/gaze.py)
            points[slot] += width * (across * right + move[1] * down)
            rims.append(points[slot] + offsets * width / max(photo_width, 1e-6))
        return np.concatenate([points] + rims)

    def rolled(self, src: np.ndarray, points: np.ndarray, open_shape: np.ndarray) -> tuple[np.ndarray, list[float]]:
        """`src` with each closing upper lid's edge read further up the photo's lid (toward its lash line), and
        how closed each eye is (0 open as the eyeball is drawn, 1 shut)."""
        out, closed = src, []
        for (eye, upper, _, crease), lash in zip(self.lids, self.lash_at):
            gap = np.linalg.norm(points[eye["upper"]] - points[eye["lower"]])
            open_gap = np.linalg.norm(open_shape[eye["upper"], :2] - open_shape[eye["lower"], :2])
            c = float(np.clip(1.0 - gap / max(open_gap, 1e-6), 0.0, 1.0))
            closed.append(c)
            if c > 0:
                if out is src:
                    out = src.copy()
                roll = min(c / LID_ROLL_BY, 1.0) * lash
                out[upper] = self.src2d[upper] + roll[:, None] * (self.src2d[crease] - self.src2d[upper])
        return out, closed
