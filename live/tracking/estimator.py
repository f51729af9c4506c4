"""The tracking stack the config asks for: estimator (tracker + 3D face model) and smoother."""

from __future__ import annotations

from live.config import SmoothingConfig, TrackingConfig
from models.face.params import ParamEstimator
from models.face.shape_model import FaceModel
from models.face.smoothing import ParamSmoother


def make_estimator(cfg: TrackingConfig) -> ParamEstimator:
    return ParamEstimator(model=FaceModel.load(cfg.face_model), max_faces=cfg.max_faces,
                          flip_average=cfg.flip_average, min_detection_confidence=cfg.min_detection_confidence,
                          min_tracking_confidence=cfg.min_tracking_confidence)


def make_smoother(cfg: SmoothingConfig) -> ParamSmoother:
    return ParamSmoother(cfg.min_cutoff, cfg.beta, cfg.d_cutoff, enabled=cfg.enabled)
