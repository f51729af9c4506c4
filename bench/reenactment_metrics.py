"""Per-frame reenactment metrics, as the paper reports them, on 256 px face crops.

- CSIM: cosine similarity of face-identity embeddings (models/identity/embedding.py; dlib by default).
- PSNR, SSIM: of the uint8 crops (SSIM: Gaussian window sigma 1.5, on the mean of the channels).
- NME: mean 2D distance between the tracker's 478 landmarks on the two images, divided by the
  reference's inter-ocular distance (outer eye corners), in percent (x100).
- Pose error: mean |yaw|, |pitch|, |roll| difference in degrees.
- Expression error: mean |difference| of the 12 expression coefficients of our 3D face model, in
  standard deviations of its build footage (the paper's uses DECA's coefficients: not the same units).
- Teeth share: of the pixels inside the tracked inner lips, the share that look like teeth: lighter (CIE L)
  than 0.7 of the image's eye whites or cheeks, whichever is lighter (teeth are a white under the same light;
  a small or dim face's eye whites read as dark as its skin), and no redder (Lab a) than its cheeks plus 6
  (lips and tongue are redder than skin, teeth are not; a hue or saturation bound fails on yellow paintings
  and warm-lit video). A relative measure, for comparing renderers on the same frames: a driver's pink
  tongue in a dim, small face (vox_driving) still counts in part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.landmarks import EYE_LEFT, EYE_RIGHT
from models.face.shape_model import FaceModel
from models.face.tracker import MediaPipeTracker
from models.image_metrics import psnr as image_psnr

EVAL_SIZE = 256
REDDER_THAN_SKIN = 6.0      # Lab a above the cheeks' at which a mouth pixel is lip or tongue, not teeth


@dataclass
class FaceMeasure:
    found: bool
    landmarks: np.ndarray | None = None   # [478, 3] pixels of the evaluated image
    params: np.ndarray | None = None      # [15]
    embedding: np.ndarray | None = None   # [D] identity


class Measurer:
    """Tracks and embeds single images (no video state)."""

    def __init__(self, identity=None):
        from models.identity.embedding import default_identity
        self.model = FaceModel.load()
        self.tracker = MediaPipeTracker(max_faces=1, video=False, mirror_index=self.model.mirror)
        self.identity = identity if identity is not None else default_identity()

    def __call__(self, image: np.ndarray) -> FaceMeasure:
        obs = self.tracker.track(np.ascontiguousarray(image))
        if not obs.found:
            return FaceMeasure(False)
        emb = self.identity.embed([image], [obs.box])[0]
        return FaceMeasure(True, obs.landmarks, self.model.fit(obs.landmarks).params, emb)

    def close(self) -> None:
        self.tracker.close()


def interocular(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[EYE_LEFT["outer"], :2] - landmarks[EYE_RIGHT["outer"], :2]))


def nme(out: np.ndarray, ref: np.ndarray) -> float:
    """Mean landmark distance / the reference's inter-ocular distance, x100."""
    return float(np.linalg.norm(out[:, :2] - ref[:, :2], axis=1).mean() / interocular(ref) * 100)


def pose_errors(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """|yaw|, |pitch|, |roll| differences in degrees."""
    return np.abs(np.asarray(out[:3]) - np.asarray(ref[:3]))


def expression_error(out: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(np.asarray(out[3:]) - np.asarray(ref[3:])).mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two uint8 crops."""
    return image_psnr(a, b, 255.0)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (Wang et al. 2004) of two uint8 images, on their grey level, Gaussian window sigma 1.5."""
    from scipy.ndimage import gaussian_filter
    x, y = (np.asarray(i, np.float64).mean(-1) for i in (a, b))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = gaussian_filter(x, 1.5), gaussian_filter(y, 1.5)
    vx = gaussian_filter(x * x, 1.5) - mx * mx
    vy = gaussian_filter(y * y, 1.5) - my * my
    cxy = gaussian_filter(x * y, 1.5) - mx * my
    return float((((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))).mean())


def compare(out: FaceMeasure, ref: FaceMeasure, out_image: np.ndarray | None = None,
            ref_image: np.ndarray | None = None, target_params: np.ndarray | None = None,
            identity_ref: np.ndarray | None = None, target_gaze: np.ndarray | None = None) -> dict:
    """One frame's metrics of `out` against `ref` (NaN where a face is missing). target_params: the pose
    and expression to compare with (default: the reference's); identity_ref: the embedding CSIM is taken
    against (default: the reference's)."""
    from models.identity.embedding import csim
    row = {"face": bool(out.found)}
    if out_image is not None and ref_image is not None:
        row.update(psnr=psnr(out_image, ref_image), ssim=ssim(out_image, ref_image))
        row["mouth_psnr"] = (psnr(*(i[mouth_box(ref.landmarks, ref_image.shape)] for i in (out_image, ref_image)))
                             if ref.found and out_image.shape == ref_image.shape else float("nan"))
    nan = float("nan")
    target = target_params if target_params is not None else (ref.params if ref.found else None)
    who = identity_ref if identity_ref is not None else (ref.embedding if ref.found else None)
    ok = out.found
    row["csim"] = float(csim(out.embedding, who)) if ok and who is not None else nan
    row["nme"] = nme(out.landmarks, ref.landmarks) if ok and ref.found else nan
    if ok and target is not None:
        yaw, pitch, roll = pose_errors(out.params, target)
        row.update(yaw_err=float(yaw), pitch_err=float(pitch), roll_err=float(roll),
                   pose_err=float((yaw + pitch + roll) / 3), exp_err=expression_error(out.params, target))
    else:
        row.update(yaw_err=nan, pitch_err=nan, roll_err=nan, pose_err=nan, exp_err=nan)
    # gaze: the iris offset (eye widths, models/face/gaze.py) against the target's (default: the reference's)
    from models.face.gaze import measure_gaze
    if target_gaze is None and ref.found and ref.landmarks is not None:
        target_gaze = measure_gaze(ref.landmarks)
    row["gaze_err"] = (float(np.linalg.norm(measure_gaze(out.landmarks) - target_gaze))
                       if ok and target_gaze is not None and np.isfinite(target_gaze).all() else nan)
    for k, name in ((0, "yaw"), (1, "pitch"), (3, "jaw")):       # for Pearson over a clip
        row[name] = float(out.params[k]) if ok else nan
        row[f"{name}_target"] = float(target[k]) if target is not None else nan
    return row


def mouth_box(landmarks: np.ndarray, shape: tuple) -> tuple[slice, slice]:
    """The inner lips' bounding box grown by 0.3 of its width each way: lips, teeth and the skin around them
    (the mouth region's PSNR)."""
    from models.face.mesh_topology import boundary_loops
    lips = landmarks[boundary_loops()["mouth"], :2]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    pad = 0.3 * (x1 - x0)
    x0, y0 = max(int(x0 - pad), 0), max(int(y0 - pad), 0)
    x1, y1 = min(int(np.ceil(x1 + pad)), shape[1]), min(int(np.ceil(y1 + pad)), shape[0])
    return slice(y0, max(y1, y0 + 1)), slice(x0, max(x1, x0 + 1))


def eye_white(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """The image's eye-white colour (live/warp/mouth_interior.py's measure), or None."""
    from live.warp.mouth_interior import eye_white_colour
    return eye_white_colour(image, landmarks)


def teeth_share(image: np.ndarray, landmarks: np.ndarray, white: np.ndarray) -> float:
    """The share of teeth-like pixels inside the inner lips (module doc); 0 for a mouth too closed to see into."""
    import cv2

    from live.warp.driver_mouth import cheek_colour
    from models.face.mesh_topology import boundary_loops
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[boundary_loops()["mouth"], :2]).astype(np.int32)], 255)
    inside = image[cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0]
    if len(inside) < 8:
        return 0.0
    lab = cv2.cvtColor(np.concatenate([inside, np.float32(white)[None], cheek_colour(image, landmarks)[None]])
                       .astype(np.float32)[:, None] / 255.0, cv2.COLOR_RGB2Lab)[:, 0]
    (white_l, _, _), (cheek_l, cheek_a, _) = lab[-2], lab[-1]
    teeth = (lab[:-2, 0] > 0.7 * max(white_l, cheek_l)) & (lab[:-2, 1] < cheek_a + REDDER_THAN_SKIN)
    return float(teeth.mean())
