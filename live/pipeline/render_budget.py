"""The warp's frame drawn smaller on a slow CPU: when drawing takes more of the frame interval than the loop can
spare it, the frame is drawn at a lower resolution and scaled up to the output, one reported step at a time.

The added latency is tracking plus drawing. Tracking has its own budget (live/pipeline/tracking_budget.py, 55 % of
the interval); the loop's target, 25 ms at 30 fps, is three quarters of the interval, and drawing gets SHARE of it.
A step is taken when the median drawing time over the last WINDOW frames with a face exceeds that share of the
interval the source delivers:
- at most once per WINDOW frames;
- not within the first WINDOW frames (the loop's first second, when the tracker starts and calibrates on the same
  cores, draws slower than the rest);
- never back up (a machine that was too slow a moment ago is likely to be again).
The steps draw the frame's side at 75 %, then 50 % of the output's: 0.56, then 0.25 of its pixels, whose cost (the
triangle map and the remap) is most of the frame's.
"""

from __future__ import annotations

import numpy as np
from loguru import logger

WINDOW = 30
SHARE = 0.25
SIZES = (0.75, 0.5)          # the frame's side, relative to the output's, after each step


def step_name(size: float) -> str:
    return f"frame drawn at {round(size * 100)} % of the output's size"


class RenderBudget:
    def __init__(self, frame_interval_s: float):
        self.budget_s = SHARE * frame_interval_s
        self.level = 0
        self.times: list[float] = []
        self.since_step = 0
        self.seen = 0
        self.adaptations: list[dict] = []

    @property
    def size(self) -> float:
        """The frame's side relative to the output's, now."""
        return SIZES[self.level - 1] if self.level else 1.0

    def observe(self, render_s: float, frame: int, frame_interval_s: float | None = None) -> float | None:
        """One frame's drawing time (and the source's frame interval as delivered, when known: a camera giving
        15 fps leaves twice the time of 30); returns the frame's new relative size when a step is taken now."""
        if frame_interval_s is not None and frame_interval_s > 0:
            self.budget_s = SHARE * frame_interval_s
        self.seen += 1
        if self.seen <= WINDOW:
            return None
        self.times = (self.times + [render_s])[-WINDOW:]
        self.since_step += 1
        if len(self.times) < WINDOW or self.since_step < WINDOW or self.level >= len(SIZES):
            return None
        median = float(np.median(self.times))
        if median <= self.budget_s:
            return None
        self.level += 1
        self.since_step, self.times = 0, []
        self.adaptations.append({"frame": frame, "stage": "render", "step": step_name(self.size),
                                 "ms": round(median * 1000, 1), "budget_ms": round(self.budget_s * 1000, 1)})
        logger.info("drawing takes {:.1f} ms of a {:.1f} ms budget: {}", median * 1000, self.budget_s * 1000,
                    step_name(self.size))
        return self.size
