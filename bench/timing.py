"""Timing a callable: CUDA events on a GPU (device time, in stream order), wall clock on the CPU."""

from __future__ import annotations

import time
from typing import Callable

import torch


def time_calls(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> list[float]:
    """Run `fn` warmup + iters times; return the per-call latency in ms of the timed runs."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        for s, e in zip(starts, ends):
            s.record()
            fn()
            e.record()
        torch.cuda.synchronize(device)
        return [s.elapsed_time(e) for s, e in zip(starts, ends)]
    samples = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1e3)
    return samples
