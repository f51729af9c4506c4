"""The motion stage: frame -> tracked, smoothed face parameters -> the normalised delta_p to apply.

Relative mode (default): delta_p = p(t) - p_neutral, the user's own resting pose from a
calibration profile, or the median of the first second with a face; the avatar keeps its
resting pose and copies the motion. For a warp avatar the eyes blink together, a blink as a share
of the way to shut (retarget_blinks: the user's eyes and the photo's may rest open by different
amounts). Absolute mode: delta_p = p(t) - p_s, the paper's cross-reenactment, where the avatar
takes the driver's pose.
Face lost: the last delta is held for `hold_s`, then eased to zero (the avatar's neutral) over
`ease_s`; when the face is found again the delta eases back in over `ease_s`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from loguru import logger

from calibration.neutral import askew_neutral
from live.avatar.identity_limits import soft_limit
from live.pipeline.capture import synthetic_params
from live.pipeline.messages import Captured, Motion
from live.pipeline.slots import LatestSlot, Stage
from live.pipeline.tracking_budget import STEPS, predict
from models.face.landmarks import inner_lip_gap

AUTO_NEUTRAL_S = 1.0


@dataclass
class Controls:
    """Set from the preview window's keys (or tests); read by the stages each frame."""
    absolute: bool = False
    frozen: bool = False
    recalibrate: bool = False
    hud: bool = True
    quit: bool = False
    preview: bool = False        # a preview window is open (its keys work)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class LossEaser:
    """The weight of the driver's motion: 1 while tracked; after a loss, held then eased to 0;
    eased back to 1 when the face returns."""

    def __init__(self, hold_s: float, ease_s: float):
        self.hold_s, self.ease_s = hold_s, max(ease_s, 1e-6)
        self.weight = 0.0
        self.lost_since: float | None = None
        self.found_since: float | None = None
        self._weight_at_change = 0.0

    def update(self, found: bool, t: float) -> float:
        if found:
            if self.found_since is None:
                self.found_since, self.lost_since = t, None
                self._weight_at_change = self.weight
            w0 = self._weight_at_change
            self.weight = w0 + (1 - w0) * _smoothstep((t - self.found_since) / self.ease_s)
        else:
            if self.lost_since is None:
                self.lost_since, self.found_since = t, None
                self._weight_at_change = self.weight
            since = t - self.lost_since - self.hold_s
            self.weight = self._weight_at_change * (1 - _smoothstep(since / self.ease_s)) if since > 0 \
                else self._weight_at_change
        return self.weight


REST_JAW_PERCENTILE = 10
LIPS_TOUCH, LIPS_APART = 0.02, 0.08     # the driver's visible inner-lip gap (mouth widths): closed, clearly open


def lips_gate(delta: np.ndarray, lip_gap: float | None, jaw: int | None, rest_gap: float | None = 0.0) -> np.ndarray:
    """The jaw change as far as the driver's lips show it. Opening: only as far as the lips are visibly apart
    (closed lips, a gap under LIPS_TOUCH, open nothing; clearly parted ones, over LIPS_APART, pass it whole).
    Closing: lips that are shut now and were shut at rest (`rest_gap`, the driver's gap in the resting pose)
    have not closed, so a jaw below the resting one is held at rest (an avatar whose photo has parted lips
    keeps them); rest_gap None (absolute mode: the change is from the photo, not a rest) never holds it. The jaw coefficient alone read a calm, closed mouth as open, or as closed beyond closed, by
    up to 0.4 standard deviations, which moved the avatar's lips."""
    if lip_gap is None or jaw is None or delta[jaw] == 0:
        return delta
    gated = delta.copy()
    if delta[jaw] > 0:
        apart = np.clip((lip_gap - LIPS_TOUCH) / (LIPS_APART - LIPS_TOUCH), 0.0, 1.0)
        gated[jaw] *= apart * apart * (3 - 2 * apart)
    elif rest_gap is not None and lip_gap < LIPS_TOUCH and rest_gap < LIPS_TOUCH:
        gated[jaw] = 0.0
    return gated


BLINK_NAMES = ("blink_left", "blink_right")
BLINK_ROOM_LIMITS = (0.5, 2.0)          # the most a blink change is scaled down or up
MIN_ROOM = 0.25                         # a room to shut (SD) below this counts as this (eyes at rest nearly shut)
# The two eyes' blink changes (standard deviations) differ this much before one eye is drawn closing on its own (a
# wink), and this much for it to be drawn whole. The tracker reads the eye turned away as more closed: a 15 degree
# turn alone parts the eyes' readings by up to 1.5, which drawn per eye winks at the viewer.
WINK_FROM, WINK_FULL = 1.5, 2.5


def retarget_blinks(change: np.ndarray, names: list[str], neutral: np.ndarray, own: np.ndarray,
                    shut: np.ndarray) -> np.ndarray:
    """The driver's raw blink changes as the avatar draws them.
    - Together: both eyes take their mean change (and their mean rooms, below) unless they differ by more than
      WINK_FROM (a wink, drawn whole from WINK_FULL).
    - A closing change as a share of the way to shut: scaled from the driver's room to shut (shut - its resting
      blink) to the avatar's (shut - the photo's own), so the user's full blink shuts the avatar's eyes and
      half of it half-closes them. `shut`: the blink the tracker reads on shut eyes (the parameter range's top,
      the footage's 99th percentile). Without it a user whose open eyes read 0.6 while the photo's wide-open
      ones read -0.6 gave a full blink that closed the avatar's eyes two thirds of the way: a squint. Opening
      (a widening) is copied.
    `shut` and the others are [P] raw vectors in `names` order; everything but the blinks is returned as it came."""
    out = np.array(change, np.float64)
    if not all(n in names for n in BLINK_NAMES):
        return out
    k = [names.index(n) for n in BLINK_NAMES]
    apart = abs(out[k[0]] - out[k[1]])
    own_share = float(np.clip((apart - WINK_FROM) / (WINK_FULL - WINK_FROM), 0.0, 1.0))
    def together(v):                # (eyes linked: their rooms to shut are the two eyes' mean too)
        v = np.asarray(v, np.float64)[k]
        return own_share * v + (1 - own_share) * v.mean()
    out[k] = together(out)
    for i, driver_room, avatar_room in zip(k, together(shut) - together(neutral), together(shut) - together(own)):
        if out[i] > 0:
            out[i] *= float(np.clip(max(avatar_room, MIN_ROOM) / max(driver_room, MIN_ROOM), *BLINK_ROOM_LIMITS))
    return out


def resting_pose(samples: np.ndarray, names: list[str], lips_gated: bool = True) -> np.ndarray:
    """The neutral pose from a stretch of tracked parameters [T, P]: each parameter's median, except the
    jaw's, which is its 10th percentile: a user who talks through the first second closes the lips between
    syllables, while the median is a half-open mouth; taken as rest, that made every closed mouth afterwards
    a jaw below closed (and a calm driver a parted, crooked mouth). Only where the lips gate runs too
    (`lips_gated`: landmarks were tracked): without it a calm jaw at its median would sit above that rest."""
    neutral = np.median(samples, axis=0)
    if "jaw" in names and lips_gated:
        k = names.index("jaw")
        neutral[k] = np.percentile(samples[:, k], REST_JAW_PERCENTILE)
    return neutral


class MotionStage(Stage):
    def __init__(self, inp: LatestSlot, out: LatestSlot, estimator, smoother, space, p_s: np.ndarray,
                 controls: Controls, neutral: np.ndarray | None, hold_s: float, ease_s: float,
                 synthetic: bool = False, driven: list[str] | None = None, identity_limits: np.ndarray | None = None,
                 gaze=None, budget=None, retarget=False, mouth_cut=None):
        super().__init__("motion", inp, out)
        self.gaze = gaze          # a GazeFollower (live/pipeline/gaze_follow.py), or None: the photo's gaze
        # (image, landmarks) -> the driver's mouth patch (live/warp/driver_mouth.py cut_mouth), or None: not cut
        self.mouth_cut = mouth_cut
        self.last_mouth = None
        # blinks retargeted (retarget_blinks): measured for the warp renderer; a StyleGAN2 avatar's blink
        # directions are trained on the footage's own changes, so they get the driver's change as it is
        self.retarget = retarget
        self.budget = budget      # a TrackingBudget (live/pipeline/tracking_budget.py), or None: never adapt
        self._tracked: list[tuple[float, np.ndarray]] = []
        self._last_lip_gap: float | None = None
        self._skip_next = False
        self.estimator, self.smoother = estimator, smoother
        self.p_s = np.asarray(p_s, dtype=np.float64)
        self.controls, self.neutral = controls, neutral
        self.easer = LossEaser(hold_s, ease_s)
        self.synthetic = synthetic
        self.last_delta = np.zeros(len(self.p_s))
        self.last_gaze: np.ndarray | None = None
        self._auto_samples: list[np.ndarray] = []
        self._auto_gaps: list[float] = []
        self.rest_gap = 0.0        # the driver's lip gap at rest (a profile's neutral has closed lips)
        # what is off in the neutral pose (calibration/neutral.py askew_neutral), shown on the preview window
        self.askew: list[str] = []
        self.neutrals_taken = 0          # neutral poses taken from the driver (the first second's, then each c)
        if neutral is not None and not controls.absolute:
            self.askew = askew_neutral(np.asarray(neutral, np.float64), list(space.names), uneven_eyes=WINK_FROM)
            if self.askew:
                logger.warning("the calibration profile's neutral pose was taken with {}: the avatar copies your "
                               "motion from it, so it will look askew while you face the camera. Run `live calibrate` "
                               "again facing the camera, eyes open", " and ".join(self.askew))
        self.to_norm = space.to_norm
        self.shut = np.asarray(space.param_range, np.float64)[:, 1]     # a shut eye's blink (the range's top)
        names = list(space.names)
        self.names = names
        self.jaw = names.index("jaw") if "jaw" in names else None
        if not driven or driven == ["all"]:
            self.mask = np.ones(len(names))
        else:
            unknown = [n for n in driven if n not in names]
            if unknown:
                raise ValueError(f"--drive (run.driven): unknown parameter(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(names)}")
            self.mask = np.array([1.0 if n in driven else 0.0 for n in names])
        self.frames = 0
        self.found_frames = 0
        self.limits = identity_limits
        self.limited_frames = 0   # frames where the identity guard held a change back by more than 10 %

    def _reference(self, params: np.ndarray, t: float) -> np.ndarray | None:
        if self.controls.absolute:
            return self.p_s
        if self.controls.recalibrate:
            self.controls.recalibrate = False
            self.neutral, self._auto_samples, self._auto_gaps, self.rest_gap = None, [], [], 0.0
            self.askew = []
            if self.gaze is not None:
                self.gaze.recalibrate()
            logger.info("recalibrating: hold a neutral face for {:.0f} s", AUTO_NEUTRAL_S)
        if self.neutral is None:
            self._auto_samples.append((t, params))
            if self._auto_samples[-1][0] - self._auto_samples[0][0] >= AUTO_NEUTRAL_S:
                self.neutral = resting_pose(np.stack([p for _, p in self._auto_samples]), self.names,
                                            lips_gated=bool(self._auto_gaps))
                if self._auto_gaps:
                    self.rest_gap = float(np.percentile(self._auto_gaps, REST_JAW_PERCENTILE))
                self._auto_gaps = []
                again = "press c in the preview window, or use" if self.controls.preview else "use"
                logger.info("neutral pose taken from the first {:.0f} s with a face ({} frames); to set it again, "
                            "{} a profile from `live calibrate` (--profile)", AUTO_NEUTRAL_S, len(self._auto_samples),
                            again)
                self._auto_samples = []
                # (the count last: live serve's figures, read on another thread, must not pair it with the old list)
                self.askew = askew_neutral(self.neutral, self.names, uneven_eyes=WINK_FROM)
                self.neutrals_taken += 1
                if self.askew:
                    logger.warning("the neutral pose was taken with {}: the avatar copies your motion from it, so it "
                                   "will look askew while you face the camera. Face the camera, eyes open, and {} a "
                                   "profile from `live calibrate` (--profile)", " and ".join(self.askew), again)
        return self.neutral

    def process(self, c: Captured) -> Motion:
        t_start = time.perf_counter()
        self.frames += 1
        landmarks, predicted = None, False
        if self.synthetic:
            params, found = synthetic_params(c.t_source), True
        elif c.params is not None:   # a recorded track: tracked (and smoothed) when it was recorded
            params, found = np.asarray(c.params, np.float64), bool(np.isfinite(c.params).all())
        elif c.image is None:
            params, found = np.full(len(self.p_s), np.nan), False
        elif self.budget is not None and self.budget.alternate and self._skip_next and self._tracked:
            # a frame between two tracked ones: predicted from the last two (live/pipeline/tracking_budget.py)
            self._skip_next = False
            before = self._tracked[-2] if len(self._tracked) > 1 else None
            params, found = predict(self._tracked[-1], before, c.t_source), True
            predicted = True
        else:
            t_track = time.perf_counter()
            raw = self.estimator(c.image, c.index, c.t_source)
            params, found = self.smoother(raw).params, raw.found
            landmarks = raw.landmarks
            self._tracked = (self._tracked + [(c.t_source, params)])[-2:] if found else []
            self._skip_next = True
            if self.budget is not None and found:   # (a search for a lost face is not the loop falling behind)
                step = self.budget.observe(time.perf_counter() - t_track, c.index, c.interval)
                if step == STEPS[0] and hasattr(getattr(self.estimator, "tracker", None), "stop_flip_average"):
                    # the neutral pose stays. Taken again now, it would be whatever the face does this second (a
                    # turned head left the avatar turned for the rest of the call); the lone graph reads within
                    # about 0.7 degrees, 0.2 SD and 0.01 eye widths of gaze of the averaged one (bench/RESULTS.md)
                    self.estimator.tracker.stop_flip_average()
        stamps = {**c.stamps, "track_start": t_start, "track": time.perf_counter()}
        if predicted:
            lip_gap = self._last_lip_gap           # the last tracked frame's lips (a predicted frame has none)
        else:
            lip_gap = None if landmarks is None or not found else inner_lip_gap(landmarks)
            self._last_lip_gap = lip_gap
        if lip_gap is not None and not predicted and self.neutral is None and not self.controls.absolute:
            self._auto_gaps.append(lip_gap)      # the resting lips, beside the resting pose
        if found:
            self.found_frames += 1
            ref = np.zeros_like(params) if self.synthetic else self._reference(params, c.t_source)
            if ref is None:          # while the neutral pose is being collected the avatar stays neutral
                self.last_delta = 0 * self.last_delta
            else:
                change = params - ref
                if self.retarget and not self.synthetic and not self.controls.absolute:
                    change = retarget_blinks(change, self.names, ref, self.p_s, self.shut)
                self.last_delta = change * self.to_norm * self.mask       # (an eye left undriven stays still)
            self.last_delta = lips_gate(self.last_delta, lip_gap, self.jaw,
                                        None if self.controls.absolute else self.rest_gap)
            if self.limits is not None:
                guarded = soft_limit(self.last_delta, self.limits)
                self.limited_frames += bool((np.abs(self.last_delta - guarded) > 0.1 * np.abs(self.last_delta)).any())
                self.last_delta = guarded
        weight = self.easer.update(found, c.t_source)
        delta = self.last_delta * weight
        gaze = None
        if self.gaze is not None:
            if found and landmarks is not None:
                self.last_gaze = self.gaze(landmarks, c.t_source)
            gaze = None if self.last_gaze is None else self.last_gaze * weight
        if self.mouth_cut is not None and found and landmarks is not None and c.image is not None:
            self.last_mouth = self.mouth_cut(c.image, landmarks)     # (a predicted frame keeps the last one)
        return Motion(c.index, c.t_source, found, params, delta.astype(np.float32), c.image, stamps, gaze,
                      self.last_mouth, c.interval)
