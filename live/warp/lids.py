"""A closing upper lid, drawn as the avatar's own (live/warp/renderer.py draws it after the warp).

Warped alone, a closing lid stretches the few pixels of the photo's lid, with its lashes and the eye white
under them, over the whole eye: the tracker and a viewer read it as a squint. So, as the eye closes, the lid
from its crease down to its edge is painted in the photo's own lid skin, a little darker toward the edge
where a shut lid curves away; along the edge runs a lash line in the photo's lash colour, thinning toward
the corners; and the lid casts a shadow on the eye just under its edge. All of it fades in with the closure
(no change to an open eye) and is blurred at its border (no seam against the warped skin).
"""

from __future__ import annotations

import numpy as np

from live.warp.pixels import LUMA, clamped_box, sample
from models.face.gaze import eye_axes

SKIN_ABOVE = 0.2        # the lid's skin colour is read up to this many eye widths above its crease
SKIN_BY = 0.15          # closed this much, the lid is wholly that skin (less: blended in); the lash line too
SKIN_EDGE_SHADE = 0.8   # the skin's brightness at the lid's edge (1 a third of an eye width up)
SKIN_SHADE_REACH = 0.35
SKIN_BLUR = 0.06        # the lid's border blur, in eye widths
SHADOW, SHADOW_REACH, SHADOW_BY = 0.5, 0.2, 0.3   # the shadow under the edge: darkening, reach (eye widths), full at
LASH_WIDTH = 0.05       # the lash line's thickness mid-lid, in eye widths (0.4 of it at the corners)
LASH_SHADE = 0.6        # a shut eye's lash line is darker than an open one's: both rows of lashes and the lid's fold
LASH_REACH = 0.3        # the photo's lashes are looked for this far past its lash line (toward the crease)
MIN_CLOSED = 0.02       # less closed than this, the lid is the photo's own


class LidPainter:
    """The lid skin, lash colour and drawing for one photo's two upper lids."""

    def __init__(self, photo: np.ndarray, src2d: np.ndarray, lids: list, lash_at: list):
        """lids: (eye, upper lid points, lower lid points, crease points) per eye (live/warp/eyes.py WarpEyes.lids);
        lash_at: per upper-lid point, how far up toward the crease the photo's lash line is (0-1)."""
        self.lids = lids
        self.skin = [self._skin(photo, src2d, eye, crease) for eye, _, _, crease in lids]
        self.lash_colour = [self._lash_colour(photo, src2d, upper, crease, lash)
                            for (_, upper, _, crease), lash in zip(lids, lash_at)]

    @staticmethod
    def _skin(photo: np.ndarray, src2d: np.ndarray, eye: dict, crease: np.ndarray) -> np.ndarray:
        """[len(crease), 3] the photo's lid skin above each crease point: the brighter half of the strip up to
        SKIN_ABOVE eye widths above it (brow hairs and the crease's shadow are the darker ones)."""
        _, _, down, width = eye_axes(src2d, eye)
        steps = np.linspace(0.02, SKIN_ABOVE, 10) * width
        strip = sample(photo, src2d[crease][:, None] - steps[None, :, None] * down)      # [points, steps, 3]
        luma = strip @ LUMA
        keep = luma >= np.median(luma, axis=1, keepdims=True)
        return np.stack([strip[i][keep[i]].mean(0) for i in range(len(crease))])

    @staticmethod
    def _lash_colour(photo: np.ndarray, src2d: np.ndarray, upper: np.ndarray, crease: np.ndarray,
                     lash: np.ndarray) -> np.ndarray:
        """[3] the photo's own lash line: the darkest tenth between the tracked lid edge and a little past the lash
        line (dark lashes on a photo, the lid's shadow on a painting that has none), darkened by LASH_SHADE."""
        reach = np.minimum(lash + LASH_REACH, 1.0)[:, None, None] * np.linspace(0, 1, 8)[None, :, None]
        pixels = sample(photo, src2d[upper][:, None] + reach * (src2d[crease] - src2d[upper])[:, None]).reshape(-1, 3)
        luma = pixels @ LUMA
        return LASH_SHADE * pixels[luma <= np.percentile(luma, 10)].mean(0)

    def draw(self, frame: np.ndarray, points: np.ndarray, closed: list[float]) -> None:
        """Paint each closing lid into `frame` (in place): points [N, 2] are the frame's face landmarks, closed the
        share each eye is closed (0 open, 1 shut; WarpEyes.rolled)."""
        import cv2
        for (eye, upper, lower, crease), skin, lash_colour, c in zip(self.lids, self.skin, self.lash_colour, closed):
            if c < MIN_CLOSED:
                continue
            centre, right, down, width = eye_axes(points, eye)
            edge = points[np.concatenate([[eye["outer"]], upper, [eye["inner"]]])]
            lid = np.concatenate([edge, points[crease][::-1]])
            margin = (SKIN_BLUR + LASH_WIDTH) * width + 3            # the blur and the lash line reach past the lid
            box = clamped_box(np.concatenate([lid, points[lower]]), margin, frame.shape)
            if box is None:
                continue
            x0, y0, x1, y1 = box

            def filled(polygon):
                mask = np.zeros((y1 - y0, x1 - x0), np.float32)
                cv2.fillPoly(mask, [np.round((polygon - [x0, y0]) * 16).astype(np.int32)], 1.0, cv2.LINE_AA, 4)
                return mask
            blur = max(int(SKIN_BLUR * width) | 1, 3)
            lid_mask = cv2.GaussianBlur(filled(lid), (blur, blur), 0)
            ys, xs = np.mgrid[y0:y1, x0:x1]
            offset = np.stack([xs, ys], -1) - centre
            along, across = offset @ right, offset @ down
            skin_along = (points[crease] - centre) @ right
            order = np.argsort(skin_along)
            colour = np.stack([np.interp(along, skin_along[order], skin[order, d]) for d in range(3)], -1)
            edge_along, edge_across = (edge - centre) @ right, (edge - centre) @ down
            order = np.argsort(edge_along)
            above_edge = np.interp(along, edge_along[order], edge_across[order]) - across    # pixels, up from the edge
            up = np.clip(above_edge / (SKIN_SHADE_REACH * width), 0, 1)
            colour *= (SKIN_EDGE_SHADE + (1 - SKIN_EDGE_SHADE) * np.sqrt(up))[..., None]
            a = (lid_mask * min(c / SKIN_BY, 1.0))[..., None]
            under_edge = np.clip(1 + above_edge / (SHADOW_REACH * width), 0, 1) * (above_edge < 0)
            shadow = filled(np.concatenate([edge, points[lower][::-1]])) * under_edge          # on the eye only
            shade = 1 - SHADOW * min(c / SHADOW_BY, 1.0) * shadow[..., None]
            frame[y0:y1, x0:x1] = np.round(frame[y0:y1, x0:x1] * shade * (1 - a) + colour * a).astype(np.uint8)
            self._lash_line(frame, edge, lash_colour, width, min(c / SKIN_BY, 1.0))

    @staticmethod
    def _lash_line(frame: np.ndarray, line: np.ndarray, colour: np.ndarray, width: float, strength: float) -> None:
        """The lashes along a closing lid's edge, in the photo's lash colour, thickest mid-lid. They come in with
        the lid's skin (the photo's own lashes are under it)."""
        import cv2
        box = clamped_box(line, LASH_WIDTH * width + 3, frame.shape)
        if box is None:
            return
        x0, y0, x1, y1 = box
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        fixed = np.round((line - [x0, y0]) * 16).astype(np.int32)
        mid_lid = np.sin(np.pi * (np.arange(len(line) - 1) + 0.5) / (len(line) - 1))     # 0 at the corners, 1 mid-lid
        for i, share in enumerate(mid_lid):
            thick = max(int(round(LASH_WIDTH * width * (0.4 + 0.6 * share))), 1)
            cv2.line(mask, tuple(fixed[i]), tuple(fixed[i + 1]), 255, thick, cv2.LINE_AA, 4)
        a = mask[..., None] / 255.0 * strength
        frame[y0:y1, x0:x1] = np.round(frame[y0:y1, x0:x1] * (1 - a) + colour * a).astype(np.uint8)
