"""The loop keeping up on a slow CPU: when tracking takes more of the frame interval than it can spare,
it is made cheaper, one step at a time, and every step is reported.

Steps, cheapest loss first:
1. flip averaging off: the mirror image is no longer tracked (half the tracker's work on one core; a
   little more jitter, which the One-Euro smoothing absorbs);
2. tracking on alternate frames: the frames between get parameters predicted from the last two
   tracked ones (linear, over their time stamps), so motion stays smooth at the source's frame rate.
A step is taken when the median tracking time over the last WINDOW frames with a face exceeds SHARE of
the frame interval the source delivers (the rest is the renderer's and the sinks'), at most once per
WINDOW frames. The first step keeps the resting pose measured with flip averaging: taken again, it would be
whatever the face does then. Nothing is stepped back up: a machine that was too slow a moment ago is likely to be again.
"""

from __future__ import annotations

import numpy as np
from loguru import logger

WINDOW = 30
SHARE = 0.55
STEPS = ("flip averaging off", "tracking on alternate frames")


class TrackingBudget:
    def __init__(self, frame_interval_s: float, can_stop_flip: bool = True):
        self.budget_s = SHARE * frame_interval_s
        self.level = 0 if can_stop_flip else 1          # step 1 is moot for a tracker without flip averaging
        self.times: list[float] = []
        self.since_step = 0
        self.adaptations: list[dict] = []

    def observe(self, tracking_s: float, frame: int, frame_interval_s: float | None = None) -> str | None:
        """One tracked frame's tracking time (and the source's frame interval as delivered, when known);
        returns the step to take now, if any."""
        if frame_interval_s is not None and frame_interval_s > 0:
            self.budget_s = SHARE * frame_interval_s
        self.times.append(tracking_s)
        self.times = self.times[-WINDOW:]
        self.since_step += 1
        if len(self.times) < WINDOW or self.since_step < WINDOW or self.level >= len(STEPS):
            return None
        median = float(np.median(self.times))
        if median <= self.budget_s:
            return None
        step = STEPS[self.level]
        self.level += 1
        self.since_step, self.times = 0, []
        self.adaptations.append({"frame": frame, "stage": "tracking", "step": step, "ms": round(median * 1000, 1),
                                 "budget_ms": round(self.budget_s * 1000, 1)})
        logger.info("tracking takes {:.1f} ms of a {:.1f} ms budget: {}", median * 1000, self.budget_s * 1000, step)
        return step

    @property
    def alternate(self) -> bool:
        """Track every other frame (step 2 taken)."""
        return self.level >= 2


def predict(last: tuple[float, np.ndarray], before: tuple[float, np.ndarray] | None, t: float) -> np.ndarray:
    """Parameters at time t, extrapolated from the last two tracked (time, params); the last alone: held."""
    t1, p1 = last
    if before is None or t1 <= before[0]:
        return p1
    t0, p0 = before
    return p1 + (p1 - p0) * min((t - t1) / (t1 - t0), 1.0)
