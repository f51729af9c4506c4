"""Latency statistics shared by the live loop and the benchmarks."""

from __future__ import annotations

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
