"""The driver's own mouth inside on a warp avatar whose photo's mouth is closed (`--mouth driver`).

The drawn inside (live/warp/mouth_interior.py) is made up: teeth, tongue and throat in the photo's colours at
the opening the mesh asks for. The driver's camera sees the real one, frame by frame: the teeth a smile shows,
the tongue on an "l", the dark of an "o". This carries it over:
- tracking side (`cut_mouth`): the driver's mouth cut out in the mouth's own frame (across: from one inner lip
  corner to the other; down: at right angles; both in mouth widths, the outer corners' distance) into a small
  patch of fixed size, with the driver's inner-lip opening as a mask and the driver's cheek colour;
- render side (`DriverMouth.draw`): the patch mapped into the avatar's mouth hole in the same frame, over the
  drawn inside, where the driver's lips are apart.
Its colours are carried from the driver's light to the photo's, relative to the skin both faces show (the
cheeks), in CIE Lab:
- lightness scaled by the cheeks' lightness ratio, never lighter than the photo's eye whites, or 1.1 of its
  cheeks' where those read darker (a painting's small eyes: Bouguereau's whites read as dark as skin);
- colour (a, b) turned by the cheeks' hue difference and scaled by their saturation ratio (at least 0.6 of it in a
  colour photo, so a pale painted cheek does not make a grey tongue; a black-and-white or tinted photo keeps the
  ratio, down to none);
- pixels with little colour (teeth, and the throat's dark) take 0.35 of the photo's skin tint instead: their own
  faint tint, turned with the skin's hue, comes out green or blue;
- a driver's cheek with little colour (a grey beard where it is sampled, a cool white balance) turns nothing, and
  its saturation ratio is taken against a typical skin's.
So a black-and-white photo gets grey teeth and a dark throat, a warm painting warm ones. A per-channel gain
would not do: it takes the cheek's own colour for the light's and turns the teeth cyan on the first; the eye
whites, the other candidate, read far darker in a webcam's shadowed eyes than in a portrait. The driver's cheek
colour is smoothed over frames. The patch's edge is feathered into the drawn inside, which still shows
wherever the avatar's hole is larger than the driver's. The mouth frame is the one the drawn inside uses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from live.warp.mouth_interior import eye_white_colour, mouth_frame, skin_white
from live.warp.pixels import sample, smoothstep
from models.face.landmarks import EYE_LEFT, EYE_RIGHT, MOUTH_LEFT, MOUTH_RIGHT
from models.face.mesh_topology import boundary_loops

ACROSS = 0.55                   # the patch spans +-ACROSS mouth widths across
UP, DOWN = 0.25, 0.65           # and from UP above the inner corners' midpoint to DOWN below it
PATCH_WIDTH = 96                # pixels; the height keeps the frame's aspect
PATCH_HEIGHT = int(round(PATCH_WIDTH * (UP + DOWN) / (2 * ACROSS)))
LIGHTNESS_RANGE = (0.5, 2.0)    # limits of the cheeks' lightness ratio (a cheek in deep shadow must not blow out teeth)
SATURATION_RANGE = (0.6, 2.0)   # and of their saturation ratio in a colour photo: a pale painted cheek does not
COLOUR_PHOTO = 15.0             # make a grey tongue. Below this cheek chroma (Lab) the photo is taken for black and
                                # white or tinted: the ratio as it is, down to none
DRIVER_HUE = (5.0, 15.0)        # driver cheek chroma (Lab) over which its hue goes from unknown to trusted
SKIN_CHROMA = 25.0              # the least cheek chroma the saturation ratio is taken against (a typical skin's;
                                # a grey cheek's is about 0)
TOP_OVER_CHEEK = 1.1            # the lightest a tooth may be, over the photo's cheek lightness, where its eye whites
                                # read darker than that
NEUTRAL_CHROMA = (8.0, 22.0)    # Lab chroma up to which a driver's mouth pixel has no colour of its own (teeth, the
                                # throat's dark), from which it is coloured (tongue, gums)
TEETH_TINT = 0.35               # the share of the photo's skin tint a pixel without colour of its own takes
SMOOTHING = 0.15                # share of each frame's cheek colour in the running one (the sample is noisy)
FEATHER = 0.03                  # mouth widths over which the patch fades into the drawn inside
SHARP_WIDTH = (24.0, 48.0)      # the driver's mouth width in its camera's pixels over which the patch fades in: a
                                # mouth smaller than this shows blurred teeth, the drawn ones are sharper
INSET = 0.02                    # mouth widths the driver's opening is taken inside its tracked inner lips (their
                                # points sit on the lips' inner edge: lip colour would rim the hole)


@dataclass(frozen=True)
class MouthPatch:
    """The driver's mouth in its own frame: pixels [PATCH_HEIGHT, PATCH_WIDTH, 3] uint8 RGB, the inside of the
    inner lips [PATCH_HEIGHT, PATCH_WIDTH] uint8 (255 inside), the driver's cheek colour [3] (RGB) and mouth
    width in the camera's pixels."""

    pixels: np.ndarray
    inside: np.ndarray
    cheek: np.ndarray
    width_px: float


def patch_to_image(points: np.ndarray) -> np.ndarray:
    """[2, 3] affine from patch pixel coordinates (x, y) to image coordinates for the mouth of `points`."""
    centre, axis, down, width = mouth_frame(points)
    per_x = 2 * ACROSS / PATCH_WIDTH * width
    per_y = (UP + DOWN) / PATCH_HEIGHT * width
    # pixel x is centred at u = -ACROSS + (x + 1/2) * (2 ACROSS / PATCH_WIDTH), likewise y at v
    origin = centre + width * (-ACROSS * axis - UP * down) + 0.5 * (per_x * axis + per_y * down)
    return np.stack([per_x * axis, per_y * down, origin], 1)


def cheek_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The median colour of 5x5 samples around a point on each cheek, halfway from the lower lid to the mouth's
    corner (skin on every face, clear of the nose's shadow)."""
    p = np.asarray(landmarks, np.float64)[:, :2]
    centres = 0.5 * p[[EYE_LEFT["lower"], EYE_RIGHT["lower"]]] + 0.5 * p[[MOUTH_LEFT, MOUTH_RIGHT]]
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)), -1).reshape(-1, 2)
    where = (centres[:, None, :] + 0.06 * mouth_frame(p)[3] * grid[None]).reshape(-1, 2)
    return np.median(sample(image, where), axis=0)


def cut_mouth(image: np.ndarray, landmarks: np.ndarray) -> MouthPatch:
    """The driver's mouth patch from one tracked frame (RGB uint8, landmarks [478, 2+] in its pixels)."""
    import cv2
    m = patch_to_image(landmarks)
    pixels = cv2.warpAffine(image, m, (PATCH_WIDTH, PATCH_HEIGHT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
    to_patch = cv2.invertAffineTransform(m)
    lips = np.asarray(landmarks, np.float64)[boundary_loops()["mouth"], :2] @ to_patch[:, :2].T + to_patch[:, 2]
    inside = np.zeros((PATCH_HEIGHT, PATCH_WIDTH), np.uint8)
    shift = 4
    cv2.fillPoly(inside, [np.round(lips * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
    # only what the camera saw: rows past its frame's edge are replicated edge pixels, not the mouth
    seen = cv2.warpAffine(np.full(image.shape[:2], 255, np.uint8), m, (PATCH_WIDTH, PATCH_HEIGHT),
                          flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    inset = max(int(round(INSET * PATCH_WIDTH / (2 * ACROSS))), 1)
    inside = cv2.erode(np.minimum(inside, seen), np.ones((2 * inset + 1, 2 * inset + 1), np.uint8))
    return MouthPatch(pixels, inside, cheek_colour(image, landmarks), mouth_frame(landmarks)[3])


def _lab(rgb) -> np.ndarray:
    import cv2
    rgb = np.asarray(rgb, np.float32)
    return cv2.cvtColor(rgb.reshape(-1, 1, 3) / 255.0, cv2.COLOR_RGB2Lab).reshape(rgb.shape)


def _rgb(lab: np.ndarray) -> np.ndarray:
    import cv2
    return np.clip(cv2.cvtColor(lab.reshape(-1, 1, 3), cv2.COLOR_Lab2RGB).reshape(lab.shape) * 255.0, 0, 255)


def carry_colours(pixels: np.ndarray, driver_cheek: np.ndarray, photo_cheek: np.ndarray,
                  photo_white: np.ndarray) -> np.ndarray:
    """RGB pixels [..., 3] under the driver's light -> float32 RGB under the photo's (module doc)."""
    lab = _lab(pixels)
    (ld, ad, bd), (lp, ap, bp) = _lab(driver_cheek), _lab(photo_cheek)
    lightness = np.clip(lp / max(ld, 1.0), *LIGHTNESS_RANGE)
    # no lighter than the photo's eye whites, or its cheeks a little lightened where those read dark (small eyes
    # in a painting: Bouguereau's whites read as dark as skin)
    lab[..., 0] = np.minimum(lab[..., 0] * lightness, min(max(_lab(photo_white)[0], TOP_OVER_CHEEK * lp), 100.0))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    near_white = smoothstep((NEUTRAL_CHROMA[1] - chroma) / np.float32(NEUTRAL_CHROMA[1] - NEUTRAL_CHROMA[0]))
    # a driver's cheek with little colour (a grey beard where it is sampled, a cool white balance) has no hue to turn
    # from: the turn fades out with it, and the saturation ratio is taken against a typical skin's at least
    hued = float(smoothstep((np.hypot(ad, bd) - DRIVER_HUE[0]) / (DRIVER_HUE[1] - DRIVER_HUE[0])))
    turn = (np.arctan2(bp, ap) - np.arctan2(bd, ad)) * hued
    ratio = np.hypot(ap, bp) / max(np.hypot(ad, bd), SKIN_CHROMA)
    scale = np.clip(ratio, *SATURATION_RANGE) if np.hypot(ap, bp) >= COLOUR_PHOTO else min(ratio, 1.0)
    cos, sin = np.float32(np.cos(turn) * scale), np.float32(np.sin(turn) * scale)
    a, b = lab[..., 1].copy(), lab[..., 2].copy()
    # pixels without colour of their own (teeth, the throat's dark) take a share of the photo's skin tint (module doc)
    tint = TEETH_TINT * np.float32([ap, bp])
    lab[..., 1] = (cos * a - sin * b) * (1 - near_white) + tint[0] * near_white
    lab[..., 2] = (sin * a + cos * b) * (1 - near_white) + tint[1] * near_white
    return _rgb(lab.astype(np.float32))


class DriverMouth:
    """Draws a driver's mouth patch into an avatar frame's mouth hole (in place), in the photo's light."""

    def __init__(self, photo: np.ndarray, landmarks: np.ndarray):
        self.loop = boundary_loops()["mouth"]
        self.cheek = cheek_colour(photo, landmarks)
        white = eye_white_colour(photo, landmarks)
        self.white = white if white is not None else skin_white(photo, landmarks)
        self.driver_cheek: np.ndarray | None = None

    def driver_light(self, patch: MouthPatch) -> np.ndarray:
        """The driver's cheek colour, smoothed over frames: called with every frame's patch (the mouth open or not),
        so a change of light is followed before the mouth next opens."""
        now = np.asarray(patch.cheek, np.float64)
        self.driver_cheek = now if self.driver_cheek is None else self.driver_cheek + SMOOTHING * (now - self.driver_cheek)
        return self.driver_cheek

    def warm_up(self, photo: np.ndarray, points: np.ndarray) -> None:
        """Cut a patch from the photo and draw it into a copy, leaving no state behind (the first calls' costs)."""
        saved = self.driver_cheek
        self.draw(photo.copy(), points, cut_mouth(photo, points))
        self.driver_cheek = saved

    def draw(self, frame: np.ndarray, points: np.ndarray, patch: MouthPatch, strength: float = 1.0) -> None:
        """Composite `patch` into the hole of `points` [N, 2] (the frame's mesh). strength (0..1): how far the
        drawn inside has faded in (the lips parted beyond the photo's own), so a closing mouth shows less."""
        import cv2
        driver_cheek = self.driver_cheek if self.driver_cheek is not None else self.driver_light(patch)
        lips = points[self.loop]
        x0, y0 = np.floor(lips.min(0)).astype(int) - 2
        x1, y1 = np.ceil(lips.max(0)).astype(int) + 3
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        strength *= float(smoothstep((patch.width_px - SHARP_WIDTH[0]) / (SHARP_WIDTH[1] - SHARP_WIDTH[0])))
        if x1 <= x0 or y1 <= y0 or strength <= 0:
            return
        m = patch_to_image(points)
        m[:, 2] -= (x0, y0)                              # into the box's pixels
        size = (x1 - x0, y1 - y0)
        pixels = cv2.warpAffine(patch.pixels, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        driver_inside = cv2.warpAffine(patch.inside, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        hole = np.zeros(size[::-1], np.uint8)
        shift = 4
        cv2.fillPoly(hole, [np.round((lips - [x0, y0]) * (1 << shift)).astype(np.int32)], 255, cv2.LINE_AA, shift)
        feather = max(int(round(FEATHER * mouth_frame(points)[3])) | 1, 3)
        alpha = cv2.GaussianBlur(np.minimum(hole, driver_inside), (feather, feather), 0).astype(np.float32) / 255.0
        alpha = (np.minimum(alpha, hole / np.float32(255.0)) * np.float32(strength))[..., None]
        region = frame[y0:y1, x0:x1].astype(np.float32)
        inner = carry_colours(pixels, driver_cheek, self.cheek, self.white)
        frame[y0:y1, x0:x1] = np.round(region + alpha * (inner - region)).astype(np.uint8)
