"""Finding a still, neutral face in a stream of face parameters.

A frame is accepted when a face is found, the head is still (pose speed and landmark speed,
measured against the frame `baseline` seconds earlier so tracking jitter does not count as
motion, below thresholds) and the face is neutral enough (mouth closed, eyes open: jaw and blinks
below the middle of their ranges). Calibration succeeds on the first run of accepted frames
lasting `seconds`; its robust neutral is the median of their parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from calibration.profile import CalibrationProfile
from models.face.landmarks import EYE_LEFT, EYE_RIGHT, PARAM_NAMES
from models.face.params import FaceParams
from models.face.shape_model import FaceModel, similarity_align

IX = {n: i for i, n in enumerate(PARAM_NAMES)}
TURNED_NEUTRAL_DEG = (10.0, 15.0)   # yaw, pitch: a neutral further from facing the camera than this is said (pitch
                                    # allows more: a camera above or below the screen tilts every face)


class CalibrationError(RuntimeError):
    """Calibration could not find a usable stretch; the message says what the user should do."""


@dataclass
class NeutralCriteria:
    seconds: float = 2.0
    max_pose_speed: float = 8.0        # degrees per second, any angle
    max_landmark_speed: float = 0.15   # interocular distances per second, median over the mesh
    neutral_fraction: float = 0.5      # jaw and blinks below this fraction of their range
    baseline: float = 0.25             # seconds between the frames compared for motion


class NeutralCalibrator:
    def __init__(self, model: FaceModel, criteria: NeutralCriteria | None = None):
        self.model = model
        self.criteria = criteria or NeutralCriteria()
        self.window: list[FaceParams] = []
        self.seen = self.faces = 0
        self.rejected = {"moving": 0, "not neutral": 0}
        self.fastest = 0.0
        self._recent: list[FaceParams] = []

    def _limit(self, name: str) -> float:
        lo, hi = self.model.param_range[IX[name]]
        return lo + self.criteria.neutral_fraction * (hi - lo)

    def feed(self, p: FaceParams) -> bool:
        """Add one frame; True once a still, neutral stretch of `seconds` has been collected."""
        self.seen += 1
        if not p.found:
            self.window.clear()
            self._recent.clear()
            return False
        self.faces += 1
        self._recent = [q for q in self._recent if p.time - q.time <= 2 * self.criteria.baseline] + [p]
        older = [q for q in self._recent if p.time - q.time >= self.criteria.baseline]
        if older:
            prev = older[-1]
            dt = p.time - prev.time
            pose_speed = float(np.abs(p.params[:3] - prev.params[:3]).max() / dt)
            iod = np.linalg.norm(p.landmarks[EYE_LEFT["outer"], :2] - p.landmarks[EYE_RIGHT["outer"], :2])
            mark_speed = float(np.median(np.linalg.norm(p.landmarks[:, :2] - prev.landmarks[:, :2], axis=1)) / iod / dt)
            self.fastest = max(self.fastest, pose_speed)
            if pose_speed > self.criteria.max_pose_speed or mark_speed > self.criteria.max_landmark_speed:
                self.rejected["moving"] += 1
                self.window.clear()
                return False
        if any(p.params[IX[n]] > self._limit(n) for n in ("jaw", "blink_left", "blink_right")):
            self.rejected["not neutral"] += 1
            self.window.clear()
            return False
        self.window.append(p)
        return self.window[-1].time - self.window[0].time >= self.criteria.seconds

    def result(self, name: str, source: str) -> CalibrationProfile:
        if len(self.window) < 2 or self.window[-1].time - self.window[0].time < self.criteria.seconds:
            raise CalibrationError(self.failure_message())
        params = np.stack([p.params for p in self.window])
        neutral = np.median(params, axis=0)
        spread = np.median(np.abs(params - neutral), axis=0)
        aligned = []
        for p in self.window:
            s, r, t = similarity_align(self.model.mean, p.landmarks.astype(np.float64), self.model.weights)
            aligned.append((p.landmarks - t) @ r / s)
        return CalibrationProfile(name=name, neutral=neutral, spread=spread, template=np.median(aligned, axis=0),
                                  frames=len(self.window), source=source)

    def failure_message(self) -> str:
        if self.faces == 0:
            return (f"no face found in {self.seen} frames: face the camera, fully in view and in good light, "
                    "then run `live calibrate` again")
        if self.rejected["moving"] >= self.rejected["not neutral"]:
            return (f"too much motion: a still stretch of {self.criteria.seconds:g} s was never reached "
                    f"(head turned up to {self.fastest:.0f} deg/s). Hold your head still and look at the camera.")
        return ("no neutral face: keep your mouth closed and your eyes open, relaxed, for "
                f"{self.criteria.seconds:g} s")


def askew_neutral(neutral: np.ndarray, names=PARAM_NAMES, uneven_eyes: float = 1.5) -> list[str]:
    """What is off in a neutral pose, in a user's words, one item each (empty: nothing). Motion is copied from the
    neutral, so a head turned then leaves the avatar turned while the user faces the camera, and an eye narrowed
    then (a wink, a squint, or an eye turned away, which the tracker reads as more closed) is drawn wider than the
    other for the rest of the call. `uneven_eyes`: the blink difference (standard deviations) taken for one eye
    more closed (live/pipeline/motion.py WINK_FROM)."""
    names = list(names)
    said = []
    for name, limit, how in zip(("yaw", "pitch"), TURNED_NEUTRAL_DEG, ("turned aside", "tilted up or down")):
        if name in names and abs(neutral[names.index(name)]) > limit:
            said.append(f"your head {how} {abs(neutral[names.index(name)]):.0f} degrees")
    if ("blink_left" in names and "blink_right" in names
            and abs(neutral[names.index("blink_left")] - neutral[names.index("blink_right")]) > uneven_eyes):
        said.append("one eye more closed than the other")
    return said
