"""`live calibrate`: frames from a source until a still, neutral stretch is found, then a profile."""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from calibration.neutral import NeutralCalibrator, NeutralCriteria
from calibration.profile import CalibrationProfile, check_profile_name
from live.config import LiveConfig
from live.io.sources import open_source
from live.paths import profiles_dir
from live.tracking.estimator import make_estimator


def calibrate(cfg: LiveConfig, source: str, seconds: float = 2.0, timeout: float = 20.0,
              name: str = "default") -> tuple[CalibrationProfile, Path]:
    check_profile_name(name)      # before the user holds still for nothing
    estimator = make_estimator(cfg.tracking)
    calibrator = NeutralCalibrator(estimator.model, NeutralCriteria(seconds=seconds))
    # A still photo is perfectly still: show it for as long as the stretch needs.
    frames = open_source(source, still_frames=int(30 * (seconds + 0.5)))
    logger.info("calibrating from {}: hold still, mouth closed, eyes open, for {:g} s", source, seconds)
    try:
        for k, t, frame in frames:
            if t > timeout:
                break
            if calibrator.feed(estimator(frame, k, t)):
                break
    finally:
        estimator.close()
    profile = calibrator.result(name, source)
    return profile, profile.save(profiles_dir())
