"""Neutral-pose calibration: finding the user's resting face parameters (arrives with tracking)."""
