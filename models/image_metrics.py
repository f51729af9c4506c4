"""PSNR, the one implementation the app, the benchmarks and the tests share.

Images come in three ranges here: uint8 pictures (data_range 255), generator output in [-1, 1]
(2.0) and [0, 1] (1.0). The range is always given by the caller: a default would let a [-1, 1]
comparison pass as a uint8 one and report numbers 42 dB too high.
"""

from __future__ import annotations

import math
import sys

import numpy as np


def _is_tensor(x) -> bool:
    torch = sys.modules.get("torch")   # a tensor exists only where torch is already imported: no import here
    return torch is not None and isinstance(x, torch.Tensor)


def mean_squared_error(a, b) -> float:
    """Mean squared difference of two arrays or tensors of the same shape, in float64 whatever their dtype
    (squared in fp16, a difference of 1e-4 underflows to zero and two different images read as identical)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"comparing images of different shapes: {list(a.shape)} and {list(b.shape)}")
    if _is_tensor(a) or _is_tensor(b):
        import torch
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return (a.double() - b.to(a.device).double()).square().mean().item()   # on the tensors' device
    return float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))


def psnr_from_mse(mse: float, data_range: float) -> float:
    """PSNR in dB for a mean squared error over images whose values span `data_range`; inf for no error."""
    return float("inf") if mse <= 0 else 10 * math.log10(data_range**2 / mse)


def psnr(a, b, data_range: float) -> float:
    """PSNR in dB of two images (numpy arrays or torch tensors, any dtype and device) whose values span
    `data_range`: 255 for uint8, 2.0 for [-1, 1], 1.0 for [0, 1]. inf where they are identical."""
    return psnr_from_mse(mean_squared_error(a, b), data_range)
