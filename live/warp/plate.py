"""The background plate of the mesh warp (live/warp/renderer.py): what the background layer reads.

Where a turned photo's far cheek lies beyond the mesh's outline (the outline runs behind the cheek), the layer between
the outline and the first ring would carry the cheek, the eye's corner and its lashes a second time beside the face
that turns them into view: a doubled eye corner, a dark seam and streaks (bench/RESULTS.md "The far cheek drawn
once"). The plate is the photo with that part painted out by the background beside it, mirrored in.
"""

from __future__ import annotations

import numpy as np

from kernels.triangle_map import triangle_map

PLATE_SLIVER = 0.025                    # the face's painted edge beyond its triangles, share of the face's radius
PLATE_MARGIN = 0.005                    # the plate reads this far (share of the face's radius) beyond the face's edge
EXTEND_BINS = 720                       # directions around the face's centre the plate's edge is found in
PLATE_PAD = 4                           # replicated columns between the photo and the plate (plus any overshoot)


def covered_with_holes_filled(covered: np.ndarray) -> np.ndarray:
    """[H, W] uint8, 1 where a triangle map (kernels/triangle_map.py, -1 where uncovered) covers the pixel, the holes
    inside the covered region (a face's eyes and mouth) filled too."""
    import cv2
    inside = (covered > -0.5).astype(np.uint8)
    contours, _ = cv2.findContours(inside, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(inside, contours, -1, 1, cv2.FILLED)
    return inside


def _direction_bins(offset: np.ndarray) -> np.ndarray:
    """Which of EXTEND_BINS directions around a centre each offset [..., 2] from it points in."""
    angle = np.arctan2(offset[..., 1], offset[..., 0])
    return ((angle + np.pi) / (2 * np.pi) * EXTEND_BINS).astype(int) % EXTEND_BINS


def region_edge(inside: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """[EXTEND_BINS] how far the region `inside` reaches from `centre` in each direction (0 where it does not)."""
    ys, xs = np.nonzero(inside)
    edge = np.zeros(EXTEND_BINS)
    np.maximum.at(edge, _direction_bins(np.stack([xs, ys], 1) - centre), np.hypot(xs - centre[0], ys - centre[1]))
    # a direction the region's pixels happen to miss takes its neighbours' edge
    return np.max([np.roll(edge, k) for k in range(-2, 3)], 0)


def extend_background(photo: np.ndarray, inside: np.ndarray, centre: np.ndarray, margin: float) -> np.ndarray:
    """The photo with the region `inside` (around a face centred at `centre`) painted from what lies beyond it.
    A pixel inside at distance r from the centre, in a direction where the region ends at R, takes the pixel at
    R + margin + (R - r) in that direction: the band outside the edge, mirrored inward, with its texture. (Inpainting
    smears the face's own colour in from its whole edge: a pale halo where a turn uncovers the background.)"""
    import cv2
    ys, xs = np.nonzero(inside)
    edge = region_edge(inside, centre)
    offset = np.stack([xs, ys], 1) - centre
    radius = np.hypot(offset[:, 0], offset[:, 1])
    reach = (2 * edge[_direction_bins(offset)] - radius + margin) / np.maximum(radius, 1e-6)
    map_y, map_x = np.indices(inside.shape, dtype=np.float32)
    map_x[ys, xs] = centre[0] + offset[:, 0] * reach
    map_y[ys, xs] = centre[1] + offset[:, 1] * reach
    # a mirror point past the frame's edge reads the edge's pixel on that side (reflected back it would land in the
    # face itself when the face is near the edge)
    return cv2.remap(photo, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class BackgroundPlate:
    """The photo and the plate side by side in one source image (one remap a frame), padded with replicated columns
    so that neither reads the other's edge, and the background layer's vertices again, reading the plate.
    The plate is the photo with the face painted out (extend_background) only where the face, as the photo shows
    it, reaches beyond its outline, and the sliver of a few pixels the face's triangles leave short of the face's
    edge there (else it stays behind as a thin bright line where the contour was). It is painted as the head turns
    (paint): at rest, and for expressions alone, it is the photo, and so is the frame; where a turn uncovers the
    background, the background shows, extended."""

    def __init__(self, photo: np.ndarray, src2d: np.ndarray, face_triangles: np.ndarray, oval: np.ndarray,
                 background: np.ndarray, src: np.ndarray):
        """photo [H, W, 3]; src2d: the face's landmarks in it; face_triangles, oval (the outline's indices),
        background (the background layer's triangles) and src (every vertex's photo position) as the renderer
        has them. The plate's vertices are appended after src's: `triangles` index them there."""
        import cv2
        h, w = photo.shape[:2]
        # the pixels the face's triangles cover at rest, exactly as the warp draws them (no other pixel may differ
        # from the photo at rest)
        # the eyes' and mouth's holes too: painted from outside the face only, not from its own features
        face = covered_with_holes_filled(triangle_map(src2d, src2d, face_triangles, h, w)[0]) * np.uint8(255)
        outline = src2d[oval]
        centre = outline.mean(0)
        face_radius = float(np.linalg.norm(outline - centre, axis=1).max())
        sliver = max(1, int(round(PLATE_SLIVER * face_radius)))
        # how far the face, as the photo shows it, reaches beyond its outline in each direction: a turned photo's
        # far cheek (the outline runs behind it). Only there is the plate painted: elsewhere (forehead, chin, a
        # frontal photo's cheeks) the outline is the face's edge, and the background layer's triangles stretched
        # over the skin and hair beyond it join the face's own (a painted plate there shows a crack at the
        # hairline and a dark line under the jaw)
        outline_radius = np.zeros(EXTEND_BINS)
        along = np.linspace(0, 1, 16, endpoint=False)[:, None, None]
        dense = outline + along * (np.roll(outline, -1, 0) - outline)              # the outline's edges, sampled
        np.maximum.at(outline_radius, _direction_bins(dense - centre).ravel(),
                      np.linalg.norm(dense - centre, axis=2).ravel())
        # directions no outline sample fell in take their neighbours' radius (left at 0 they would read the whole
        # face as reaching beyond the outline, and the smoothing below would spread the paint all round)
        found = np.flatnonzero(outline_radius > 0)
        outline_radius = np.interp(np.arange(EXTEND_BINS), found, outline_radius[found], period=EXTEND_BINS)
        reach = np.maximum(region_edge(face > 0, centre) - outline_radius, 0.0)
        share = np.clip((reach - sliver) / sliver, 0.0, 1.0)
        share = np.convolve(np.concatenate([share[-8:], share, share[:8]]), np.ones(17) / 17, "valid")   # no hard ends
        painted = cv2.dilate(face, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * sliver + 1, 2 * sliver + 1)))
        cv2.fillPoly(painted, [np.round(outline * 16).astype(np.int32)], 0, lineType=cv2.LINE_8, shift=4)
        rows, cols = np.nonzero(painted)
        weight = share[_direction_bins(np.stack([cols, rows], 1) - centre)]
        keep = weight > 0
        rows, cols, weight = rows[keep], cols[keep], weight[keep, None]
        full = extend_background(photo, painted > 0, centre, PLATE_MARGIN * face_radius)
        target = photo[rows, cols] + weight * (full[rows, cols].astype(np.float32) - photo[rows, cols])
        # painted as the head turns (paint): at rest and for a change of expression alone the plate is the
        # photo (the shape model's blink moves the outline a few pixels: the background would show at the cheek)
        self.painted_rows, self.painted_cols = rows, cols
        self.painted_photo = photo[rows, cols].astype(np.float32)
        self.painted_target = target.astype(np.float32)
        self.paint_full_px = 2.0 * sliver
        self.painted_share = 0.0
        plate = photo.copy()
        # as a turn carries the outline out over the far cheek, the background beside it is read from the face's
        # edge on, not from behind the cheek (vertex_sources)
        offset = outline - centre
        self.outline_out = offset / (np.linalg.norm(offset, axis=1, keepdims=True) + 1e-9)
        self.outline_reach = (reach * share)[_direction_bins(offset)]
        # the pad: wider than any source point lies past the photo's edge (a face may reach 2% past the frame), so
        # that the face reads the photo's replicated edge and the background the plate's, never the other's
        overshoot = max(0.0, float(src[:, 0].max()) - (w - 1), float(-src[:, 0].min()))
        pad = self.pad = PLATE_PAD + int(np.ceil(overshoot))
        self.offset = w + 2 * pad
        self.sources = np.ascontiguousarray(np.concatenate([
            cv2.copyMakeBorder(photo, 0, 0, 0, pad, cv2.BORDER_REPLICATE),
            cv2.copyMakeBorder(plate, 0, 0, pad, 0, cv2.BORDER_REPLICATE)], 1))
        # the background's vertices again, reading the plate: appended after all others
        self.vertices = np.unique(background)
        self.triangles = np.searchsorted(self.vertices, background) + len(src)
        self.outline = np.searchsorted(self.vertices, oval)
        if not np.array_equal(self.vertices[self.outline], oval):
            raise RuntimeError("an outline point is in no background triangle: the plate's outline cannot be placed")
        self.vertex_photo = src[self.vertices]
        self.outline_photo = src2d[oval]

    def vertex_sources(self, turned: np.ndarray) -> np.ndarray:
        """Where the background's vertices read the plate: where they lie in the photo, except the outline's, which
        read as far out toward the face's edge as the turn has carried the outline out (none at rest: the frame
        is the photo; all of the reach once the outline has moved that far)."""
        src = self.vertex_photo + (self.offset, 0)
        moved_out = np.einsum("ij,ij->i", turned - self.outline_photo, self.outline_out)
        share = np.clip(moved_out / np.maximum(self.outline_reach, 1e-6), 0.0, 1.0)
        src[self.outline] += (share * self.outline_reach)[:, None] * self.outline_out
        return src

    def paint(self, turned_px: float) -> None:
        """The plate painted by how far the head's turn alone has moved the outline: not at all at rest, fully once it
        has moved `paint_full_px` (a few degrees)."""
        share = float(np.clip(turned_px / self.paint_full_px, 0.0, 1.0))
        if share == self.painted_share:
            return
        self.painted_share = share
        pixels = self.painted_photo + share * (self.painted_target - self.painted_photo)
        plate = self.sources[:, self.offset:]
        plate[self.painted_rows, self.painted_cols] = np.round(pixels).astype(np.uint8)
        self.sources[:, self.offset - self.pad:self.offset] = plate[:, :1]   # its pad, replicated
