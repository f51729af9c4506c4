"""Frame -> face parameters p = [yaw, pitch, roll, jaw, 11 expressions]: the tracker, then the 3D fit.

Messages flow one way: a frame becomes a `FaceParams`. A frame without a face carries
found=False and NaN parameters, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.face.landmarks import PARAM_NAMES
from models.face.shape_model import FaceModel
from models.face.tracker import MediaPipeTracker, Tracker

N_PARAMS = len(PARAM_NAMES)


@dataclass(frozen=True)
class FaceParams:
    index: int
    time: float                       # seconds, capture time of the frame
    found: bool
    params: np.ndarray                # [15]: yaw, pitch, roll (deg), jaw, e1..e11; NaN when not found
    confidence: float = 0.0
    landmarks: np.ndarray | None = None  # [478, 3] pixels, for overlays and calibration
    rotation: np.ndarray | None = None
    scale: float = 0.0

    def named(self) -> dict[str, float]:
        return dict(zip(PARAM_NAMES, map(float, self.params)))


@dataclass(frozen=True)
class ParameterSpace:
    """The units a driver's change is handed on in: each parameter's raw range [lo, hi] mapped to
    [-shift_scale, shift_scale] (the paper's [-6, 6]); a raw change d is d * to_norm normalised."""
    names: tuple[str, ...]
    param_range: np.ndarray         # [P, 2] raw: degrees for pose, standard deviations for expressions
    shift_scale: float = 6.0

    @property
    def to_norm(self) -> np.ndarray:
        span = np.asarray(self.param_range, np.float64)
        return 2 * self.shift_scale / (span[:, 1] - span[:, 0])


class ParamEstimator:
    """RGB frame -> raw FaceParams (tracker + 3D face model fit) for a video: the tracker follows
    one face from frame to frame."""

    def __init__(self, tracker: Tracker | None = None, model: FaceModel | None = None, **tracker_options):
        self.model = model or FaceModel.load()
        # The tracker's flip averaging uses this model's landmark mirror map, not a second copy.
        self.tracker = tracker or MediaPipeTracker(mirror_index=self.model.mirror, **tracker_options)

    def __call__(self, frame_rgb: np.ndarray, index: int, time: float) -> FaceParams:
        obs = self.tracker.track(frame_rgb)
        if not obs.found:
            return FaceParams(index, time, False, np.full(N_PARAMS, np.nan))
        fit = self.model.fit(obs.landmarks)
        return FaceParams(index, time, True, fit.params, obs.confidence, obs.landmarks, fit.rotation, fit.scale)

    def close(self) -> None:
        self.tracker.close()


class ImageParams:
    """Face parameters of unrelated images (each tracked on its own, no video state): generator
    samples, edits, photos."""

    def __init__(self, model: FaceModel | None = None):
        self.model = model or FaceModel.load()
        self.tracker = MediaPipeTracker(max_faces=1, video=False, mirror_index=self.model.mirror)

    def __call__(self, images_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[N, H, W, 3] uint8 -> (params [N, 15], identity [N, K_id]), NaN rows where no face is found."""
        k_id = len(self.model.id_basis)
        params = np.full((len(images_uint8), N_PARAMS), np.nan)
        identity = np.full((len(images_uint8), k_id), np.nan)
        for i, img in enumerate(images_uint8):
            obs = self.tracker.track(img)
            if obs.found:
                fit = self.model.fit(obs.landmarks)
                params[i], identity[i] = fit.params, fit.identity
        return params, identity

    def close(self) -> None:
        self.tracker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
