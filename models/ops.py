"""Low-level ops of StyleGAN2: FIR filters and resampling.

Each op has a slow, obviously correct reference (`impl="ref"`, a transcription of
the reference trainer's native `upfirdn2d`) and a fast form with the same result
(`impl="fast"`) built from a single strided/grouped convolution, which is what the
engines use. Tests compare the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def make_fir_kernel(taps: list[float] | tuple[float, ...], gain: float = 1.0) -> torch.Tensor:
    """Separable 2D FIR kernel, normalised to sum 1, times `gain`. Shape [k, k]."""
    k = torch.tensor(taps, dtype=torch.float32)
    k2 = k[None, :] * k[:, None]
    return k2 / k2.sum() * gain


def upfirdn2d_ref(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
                  pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with `kernel`, downsample. x: [N, C, H, W]."""
    assert x.ndim == 4, "x must be [N, C, H, W]"
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    p0, p1 = pad
    x = F.pad(x, [max(p0, 0), max(p1, 0), max(p0, 0), max(p1, 0)])
    x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
    # A true convolution: flip the kernel because conv2d is a correlation.
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, weight, groups=c)
    return x[:, :, ::down, ::down]


def blur2d(x: torch.Tensor, kernel: torch.Tensor, pad: tuple[int, int]) -> torch.Tensor:
    """Depthwise FIR filter with symmetric padding (the `Blur` of the reference trainer)."""
    c = x.shape[1]
    if pad[0] != pad[1]:
        return upfirdn2d_ref(x, kernel, pad=pad)
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, padding=pad[0], groups=c)


def upsample2d(x: torch.Tensor, kernel: torch.Tensor, impl: str = "fast") -> torch.Tensor:
    """2x FIR upsampling of the skip branch: upfirdn2d(up=2, pad=(2, 1)) with a 4-tap kernel.

    The fast form is one depthwise transposed convolution: zero insertion followed by a
    4-tap filter is exactly conv_transpose2d(stride=2) cropped by one pixel per side.
    """
    assert kernel.shape == (4, 4), "upsample2d expects a 4x4 kernel"
    if impl == "ref":
        return upfirdn2d_ref(x, kernel, up=2, pad=(2, 1))
    c = x.shape[1]
    weight = kernel.to(x.dtype)[None, None].expand(c, 1, 4, 4)
    return F.conv_transpose2d(x, weight, stride=2, padding=1, groups=c)
