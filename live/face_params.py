"""Frame -> face parameters: tracking, the 3D fit, and temporal smoothing, as pipeline stages.

Messages flow one way: a frame becomes a `FaceParams` (raw), which the smoother turns into
another `FaceParams` (smoothed). A frame without a face carries found=False and NaN params.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from kernels.one_euro import OneEuroState, one_euro_step
from live.config import SmoothingConfig, TrackingConfig
from live.tracking import MediaPipeTracker, Tracker
from models.face_landmarks import PARAM_NAMES
from models.face_model import FaceModel

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


def make_tracker(cfg: TrackingConfig, mirror_index: np.ndarray | None = None) -> Tracker:
    return MediaPipeTracker(max_faces=cfg.max_faces, flip_average=cfg.flip_average,
                            min_detection_confidence=cfg.min_detection_confidence,
                            min_tracking_confidence=cfg.min_tracking_confidence, mirror_index=mirror_index)


class ParamEstimator:
    """RGB frame -> raw FaceParams (tracker + 3D face model fit)."""

    def __init__(self, cfg: TrackingConfig, tracker: Tracker | None = None, model: FaceModel | None = None):
        self.model = model or FaceModel.load(cfg.face_model)
        # The tracker's flip averaging uses this model's landmark mirror map, not a second copy.
        self.tracker = tracker or make_tracker(cfg, mirror_index=self.model.mirror)

    def __call__(self, frame_rgb: np.ndarray, index: int, time: float) -> FaceParams:
        obs = self.tracker.track(frame_rgb)
        if not obs.found:
            return FaceParams(index, time, False, np.full(N_PARAMS, np.nan))
        fit = self.model.fit(obs.landmarks)
        return FaceParams(index, time, True, fit.params, obs.confidence, obs.landmarks, fit.rotation, fit.scale)

    def close(self) -> None:
        self.tracker.close()


class ParamSmoother:
    """One-Euro smoothing of FaceParams; a gap without a face longer than `reset_after` s restarts it."""

    def __init__(self, cfg: SmoothingConfig, reset_after: float = 0.5, impl: str = "auto"):
        self.cfg, self.reset_after, self.impl = cfg, reset_after, impl
        self.min_cutoff = np.array([cfg.min_cutoff[n] for n in PARAM_NAMES])
        self.beta = np.array([cfg.beta[n] for n in PARAM_NAMES])
        self.state = OneEuroState.zeros(N_PARAMS)
        self.last_time: float | None = None

    def __call__(self, p: FaceParams) -> FaceParams:
        if not self.cfg.enabled or not p.found:
            return p
        if self.last_time is None or p.time - self.last_time > self.reset_after or p.time <= self.last_time:
            self.state = OneEuroState.zeros(N_PARAMS)
            dt = 1.0
        else:
            dt = p.time - self.last_time
        self.last_time = p.time
        smoothed = one_euro_step(p.params, self.state, dt, self.min_cutoff, self.beta, self.cfg.d_cutoff, self.impl)
        return replace(p, params=smoothed)
