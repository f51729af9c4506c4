"""Generator output to displayable frames."""

from __future__ import annotations

import numpy as np
import torch


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in about [-1, 1] -> [N, H, W, 3] uint8 RGB on the CPU (NaN becomes 0)."""
    assert images.ndim == 4 and images.shape[1] == 3, "images must be [N, 3, H, W]"
    x = torch.nan_to_num(images.float(), nan=-1.0)
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def image_grid(frames: np.ndarray, cols: int | None = None) -> np.ndarray:
    """[N, H, W, 3] -> one [rows*H, cols*W, 3] image."""
    n, h, w, c = frames.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.zeros((rows * h, cols * w, c), dtype=frames.dtype)
    for i, f in enumerate(frames):
        r, k = divmod(i, cols)
        grid[r * h:(r + 1) * h, k * w:(k + 1) * w] = f
    return grid
