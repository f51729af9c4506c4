"""Latency statistics shared by the live loop and the benchmarks."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    n: int
    median_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float

    @classmethod
    def from_ms(cls, samples_ms) -> "LatencyStats":
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            raise ValueError("no latency samples")
        return cls(n=int(a.size), median_ms=float(np.median(a)), p99_ms=float(np.percentile(a, 99)),
                   mean_ms=float(a.mean()), min_ms=float(a.min()), max_ms=float(a.max()))


class LatencyHistogram:
    """Whole-run latency statistics in constant memory, for runs of any length.

    A live session can run for hours at 60 fps; keeping every sample would grow without end.
    Samples go into log-spaced bins (each 0.5 % wide, 1 us to 1000 s: about 4 200 counters), so
    median and p99 are known to within 0.25 % whatever the run's length; count, mean, min and
    max are exact. The most recent samples are also kept (a bounded window) for live displays.
    """

    LO_MS, HI_MS, RATIO = 1e-3, 1e6, 1.005

    def __init__(self, recent: int = 1000):
        self._log_ratio = math.log(self.RATIO)
        self.counts = np.zeros(math.ceil(math.log(self.HI_MS / self.LO_MS) / self._log_ratio) + 1, np.int64)
        self.n, self.total = 0, 0.0
        self.min, self.max = float("inf"), float("-inf")
        self.recent = deque(maxlen=recent)

    def add(self, ms: float) -> None:
        ms = float(ms)
        if not math.isfinite(ms):
            return
        # math, not NumPy, on this per-sample path: scalar NumPy calls cost ~10x more.
        clamped = min(max(ms, self.LO_MS), self.HI_MS)
        self.counts[int(math.log(clamped / self.LO_MS) / self._log_ratio)] += 1
        self.n += 1
        self.total += ms
        self.min, self.max = min(self.min, ms), max(self.max, ms)
        self.recent.append(ms)

    def quantile(self, q: float) -> float:
        """The q-quantile (0..1): the geometric centre of the bin that holds it, within [min, max]."""
        if self.n == 0:
            raise ValueError("no latency samples")
        rank = min(int(np.ceil(q * self.n)), self.n) or 1
        b = int(np.searchsorted(np.cumsum(self.counts), rank))
        centre = self.LO_MS * self.RATIO ** (b + 0.5)
        return float(min(max(centre, self.min), self.max))

    def stats(self) -> LatencyStats:
        if self.n == 0:
            raise ValueError("no latency samples")
        return LatencyStats(n=self.n, median_ms=self.quantile(0.5), p99_ms=self.quantile(0.99),
                            mean_ms=self.total / self.n, min_ms=self.min, max_ms=self.max)
