"""How a generator's training faces were cropped, and the crop that reproduces it for a photo.

A generator only draws faces framed the way its training set was; an avatar photo must be
cropped the same way before inversion. Framings:
- "fixture": the fixed framing of ../shared/fixtures/face128.pt's training crops: a square
  1.9 times the larger side of the landmarks' bounding box, centred 8% of the side above
  the box centre. Head roll stays in the picture.
- "voxceleb": the paper's VoxCeleb framing: a fixed square around the face box (the larger
  side times 1.8, centred 10% above the box centre), head roll kept, as in VoxCeleb crops
  where the head moves inside a still frame.
- "ffhq": FFHQ's alignment (Karras et al. 2019): an oriented square from the eye centres and
  mouth corners; it removes roll, so the face is upright and eyes sit at fixed positions.

A crop is an affine map from photo pixels to crop pixels (`CropTransform`), applied with
OpenCV (border: replicate the edge, as training crops that touch the frame edge do) and
invertible, so results can be pasted back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.landmarks import EYE_LEFT, EYE_RIGHT, MOUTH_LEFT, MOUTH_RIGHT

FRAMINGS = ("fixture", "voxceleb", "ffhq")


@dataclass(frozen=True)
class BoxFraming:
    scale: float      # side of the crop / larger side of the landmarks' box
    lift: float       # crop centre above the box centre, as a fraction of the crop side


# Generators whose framing is known by their weights (sha256 of models.checkpoint.weights_hash): files that
# carry no registry entry. The test fixture face128.pt was trained on the fixture framing.
KNOWN_FRAMINGS = {"d45addb769ed305300309fa01408e0cc9cfc2389daac2c031f7f4ecb3f597f47": "fixture"}

BOX_FRAMINGS = {"fixture": BoxFraming(scale=1.9, lift=0.08), "voxceleb": BoxFraming(scale=1.8, lift=0.10)}


@dataclass
class CropTransform:
    matrix: np.ndarray   # [2, 3] photo pixels -> crop pixels
    size: int            # crop side in pixels
    framing: str

    def apply(self, image_rgb: np.ndarray) -> np.ndarray:
        import cv2
        return cv2.warpAffine(image_rgb, self.matrix, (self.size, self.size), flags=cv2.INTER_AREA
                              if self.scale < 1 else cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def inverse(self) -> np.ndarray:
        full = np.vstack([self.matrix, [0, 0, 1]])
        return np.linalg.inv(full)[:2]

    def corners_in_photo(self) -> np.ndarray:
        """The crop's four corners in photo pixels [4, 2] (for drawing the box)."""
        inv = self.inverse()
        s = self.size
        pts = np.array([[0, 0, 1], [s, 0, 1], [s, s, 1], [0, s, 1]], float)
        return pts @ inv.T


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 similarity mapping three or more src points onto dst (least squares, no reflection)."""
    import cv2
    m, _ = cv2.estimateAffinePartial2D(src.astype(np.float32), dst.astype(np.float32), method=cv2.LMEDS)
    return m.astype(np.float64)


def crop_transform(landmarks: np.ndarray, framing: str, size: int) -> CropTransform:
    """The crop of `framing` at `size` px for a face with landmarks [478, 2+] in photo pixels."""
    pts = np.asarray(landmarks, dtype=np.float64)[:, :2]
    if framing in BOX_FRAMINGS:
        f = BOX_FRAMINGS[framing]
        lo, hi = pts.min(0), pts.max(0)
        side = f.scale * float((hi - lo).max())
        cx, cy = (lo + hi) / 2
        cy -= f.lift * side
        s = size / side
        matrix = np.array([[s, 0, size / 2 - s * cx], [0, s, size / 2 - s * cy]])
        return CropTransform(matrix, size, framing)
    if framing == "ffhq":
        return CropTransform(_ffhq_matrix(pts, size), size, framing)
    raise ValueError(f"unknown framing {framing!r}; choose one of {', '.join(FRAMINGS)}")


def _ffhq_matrix(pts: np.ndarray, size: int) -> np.ndarray:
    # FFHQ's recipe: x axis from the eye-to-eye vector and the eye-to-mouth vector, the square's
    # half side max(2 |eye_to_eye|, 1.8 |eye_to_mouth|), its centre 0.1 of eye_to_mouth below the eyes.
    eye_l = pts[[EYE_LEFT["outer"], EYE_LEFT["inner"]]].mean(0)
    eye_r = pts[[EYE_RIGHT["outer"], EYE_RIGHT["inner"]]].mean(0)
    mouth = pts[[MOUTH_LEFT, MOUTH_RIGHT]].mean(0)
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_l - eye_r  # image right to image left: the subject's left eye is on the image right
    if eye_to_eye[0] < 0:
        eye_to_eye = -eye_to_eye
    eye_to_mouth = mouth - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])  # top-left, bottom-left, bottom-right, top-right
    dst = np.array([[0, 0], [0, size], [size, size], [size, 0]], float)
    return _similarity(quad, dst)
