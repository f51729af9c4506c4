"""The driver's gaze for the avatar: measured from the tracked mesh (models/face/gaze.py), taken relative
to the user's neutral gaze, smoothed, or held at the camera.

follow: the avatar's irises move as the user's do, relative to where the user looked during the first
        second with a face (again on recalibration; also with a calibration profile, which holds no gaze):
        a user who looks at the screen, below the camera, gives an avatar that looks where the photo does;
camera: the avatar keeps the photo's gaze (eye contact, when the photo looks into its camera), whatever
        the user's eyes do: in calls people read a gaze at the screen as looking away.
Smoothing is a One-Euro filter: steady when the eyes rest, little lag in a glance.
"""

from __future__ import annotations

import numpy as np

from kernels.one_euro import OneEuroState, one_euro_step
from models.face.gaze import measure_gaze

GAZE_MODES = ("follow", "camera")
NEUTRAL_S = 1.0
MIN_CUTOFF, BETA, D_CUTOFF = 1.5, 8.0, 1.0      # Hz, Hz per eye width per second, Hz


class GazeFollower:
    def __init__(self, mode: str = "follow", neutral_s: float = NEUTRAL_S, reset_after: float = 0.5):
        if mode not in GAZE_MODES:
            raise ValueError(f"gaze: {mode!r} is not one of {', '.join(GAZE_MODES)}")
        self.mode, self.neutral_s, self.reset_after = mode, neutral_s, reset_after
        self.neutral: np.ndarray | None = None
        self._samples: list[tuple[float, np.ndarray]] = []
        self.state = OneEuroState.zeros(2)
        self.last_time: float | None = None

    def recalibrate(self) -> None:
        self.neutral, self._samples = None, []

    def __call__(self, landmarks: np.ndarray | None, t: float) -> np.ndarray | None:
        """The gaze offset to draw (eye widths), or None: the photo's own gaze."""
        if self.mode == "camera" or landmarks is None or len(landmarks) < 478:
            return None
        g = measure_gaze(landmarks)
        if not np.isfinite(g).all():
            return None
        if self.neutral is None:
            self._samples.append((t, g))
            if self._samples[-1][0] - self._samples[0][0] < self.neutral_s:
                return None
            self.neutral = np.median(np.stack([s for _, s in self._samples]), axis=0)
            self._samples = []
        if self.last_time is None or t - self.last_time > self.reset_after or t <= self.last_time:
            self.state, dt = OneEuroState.zeros(2), 1.0
        else:
            dt = t - self.last_time
        self.last_time = t
        cutoff, beta = np.full(2, MIN_CUTOFF), np.full(2, BETA)
        return one_euro_step(g - self.neutral, self.state, dt, cutoff, beta, D_CUTOFF, "ref")
