"""Generator images as pictures: NCHW float in about [-1, 1] -> NHWC uint8 RGB, grids, tracking size.

The live loop's per-frame conversion (resize, letterbox) is kernels.postprocess; these are the
batch conversions for files, grids and tracking.
"""

from __future__ import annotations

import numpy as np
import torch

TRACK_SIZE = 256  # generator images are upscaled to this before tracking (the detector needs pixels)


def to_uint8_rgb(images: torch.Tensor) -> np.ndarray:
    """[N, 3, H, W] in about [-1, 1] -> [N, H, W, 3] uint8 RGB on the CPU (NaN becomes 0)."""
    assert images.ndim == 4 and images.shape[1] == 3, "images must be [N, 3, H, W]"
    x = torch.nan_to_num(images.float(), nan=-1.0)
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def images_to_uint8(images: torch.Tensor, size: int = TRACK_SIZE) -> np.ndarray:
    """[N, 3, R, R] in [-1, 1] -> [N, size, size, 3] uint8 RGB, bicubic upscaling (for the tracker)."""
    x = images.float()
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return to_uint8_rgb(x)


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
