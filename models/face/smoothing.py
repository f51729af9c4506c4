"""One-Euro smoothing of face parameters over time (kernels.one_euro does the arithmetic)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from kernels.one_euro import OneEuroState, one_euro_step
from models.face.landmarks import PARAM_NAMES
from models.face.params import N_PARAMS, FaceParams


class ParamSmoother:
    """One-Euro filter per parameter; a gap without a face longer than `reset_after` s restarts it.

    min_cutoff, beta: {parameter name: value} (Hz, and Hz per unit of speed)."""

    def __init__(self, min_cutoff: dict, beta: dict, d_cutoff: float = 1.0, enabled: bool = True,
                 reset_after: float = 0.5, impl: str = "auto"):
        self.enabled, self.d_cutoff, self.reset_after, self.impl = enabled, d_cutoff, reset_after, impl
        self.min_cutoff = np.array([min_cutoff[n] for n in PARAM_NAMES])
        self.beta = np.array([beta[n] for n in PARAM_NAMES])
        self.state = OneEuroState.zeros(N_PARAMS)
        self.last_time: float | None = None

    def __call__(self, p: FaceParams) -> FaceParams:
        if not self.enabled or not p.found:
            return p
        if self.last_time is None or p.time - self.last_time > self.reset_after or p.time <= self.last_time:
            self.state = OneEuroState.zeros(N_PARAMS)
            dt = 1.0
        else:
            dt = p.time - self.last_time
        self.last_time = p.time
        smoothed = one_euro_step(p.params, self.state, dt, self.min_cutoff, self.beta, self.d_cutoff, self.impl)
        return replace(p, params=smoothed)
