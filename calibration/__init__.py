"""Neutral-pose calibration: the user's resting face parameters, stored as named profiles."""

from calibration.neutral import CalibrationError, NeutralCalibrator, NeutralCriteria
from calibration.profile import CalibrationProfile, ProfileError

__all__ = ["CalibrationError", "CalibrationProfile", "NeutralCalibrator", "NeutralCriteria", "ProfileError"]
