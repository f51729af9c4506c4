"""StyleGAN2 building blocks with the parameter names of the reference PyTorch trainer.

Attribute names (`conv`, `modulation`, `noise`, `activate`, `blur`, ...) are the ones
in the paper's checkpoints, so a state dict loads without renaming.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.ops import blur2d, make_fir_kernel, upsample2d

SQRT2 = math.sqrt(2.0)
MODCONV_IMPLS = ("grouped", "static")


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """leaky_relu(x + bias, 0.2) * sqrt(2): bias broadcast over dim 1."""
    shape = [1, -1] + [1] * (x.ndim - 2)
    return F.leaky_relu(x + bias.view(shape).to(x.dtype), 0.2) * SQRT2


class PixelNorm(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: weight scaled by lr_mul/sqrt(fan_in) at run time."""

    def __init__(self, in_dim: int, out_dim: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = (1.0 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = (self.weight * self.scale).to(x.dtype)
        bias = (self.bias * self.lr_mul).to(x.dtype)
        if self.activation:
            return fused_leaky_relu(F.linear(x, weight), bias)
        return F.linear(x, weight, bias)


class ModulatedConv2d(nn.Module):
    """Modulated convolution (optionally 2x upsampling) with optional demodulation.

    Two implementations of the same function:
    - "grouped": the reference form. Per-sample weights are built and applied with a
      grouped convolution. Exact, but the weights change every call.
    - "static": the conv weights stay constant; the style scales the activations before
      the convolution and the demodulation coefficients scale its output. This is what
      CUDA graphs, torch.compile and TensorRT want (constant weights, tensor-core convs).
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, style_dim: int,
                 demodulate: bool = True, upsample: bool = False,
                 blur_kernel: tuple[float, ...] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.demodulate, self.upsample = demodulate, upsample
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1.0)
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), gain=factor**2)

    def forward(self, x: torch.Tensor, w: torch.Tensor, impl: str = "grouped") -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] == self.in_channel, f"x must be [N, {self.in_channel}, H, W]"
        styles = self.modulation(w)  # [N, I]
        if impl == "grouped":
            x = self._forward_grouped(x, styles)
        elif impl == "static":
            x = self._forward_static(x, styles)
        else:
            raise ValueError(f"unknown modconv impl {impl!r}; expected one of {MODCONV_IMPLS}")
        if self.upsample:
            x = self.blur(x)
        return x

    def _forward_grouped(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        weight = self.scale * self.weight.to(x.dtype) * styles[:, None, :, None, None]  # [N, O, I, k, k]
        if self.demodulate:
            demod = torch.rsqrt(weight.square().sum([2, 3, 4]) + 1e-8)
            weight = weight * demod[:, :, None, None, None]
        k = self.kernel_size
        x = x.reshape(1, n * self.in_channel, h, w)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(n * self.in_channel, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=n)
        else:
            weight = weight.reshape(n * self.out_channel, self.in_channel, k, k)
            out = F.conv2d(x, weight, padding=self.padding, groups=n)
        return out.reshape(n, self.out_channel, *out.shape[2:])

    def _forward_static(self, x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        weight = (self.weight[0] * self.scale).to(x.dtype)  # [O, I, k, k], constant
        if self.demodulate and x.dtype == torch.float16:
            # Demodulation cancels any per-sample scale of the styles and any per-output-channel
            # scale of the weights; normalising both keeps fp16 activations far from overflow.
            weight = weight / weight.abs().amax(dim=[1, 2, 3], keepdim=True)
            styles = styles / styles.abs().amax(dim=1, keepdim=True)
        x = x * styles[:, :, None, None]
        if self.upsample:
            out = F.conv_transpose2d(x, weight.transpose(0, 1), padding=0, stride=2)
        else:
            out = F.conv2d(x, weight, padding=self.padding)
        if self.demodulate:
            # sum over (I, k, k) of (W * s)^2 == s^2 @ sum_k(W^2)^T, one small matmul.
            wsq = weight.float().square().sum([2, 3])  # [O, I]
            demod = torch.rsqrt(styles.float().square() @ wsq.t() + 1e-8)  # [N, O]
            out = out * demod.to(out.dtype)[:, :, None, None]
        return out


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.weight.to(x.dtype) * noise.to(x.dtype)


class ConstantInput(nn.Module):
    def __init__(self, channel: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch: int, dtype: torch.dtype) -> torch.Tensor:
        return self.input.to(dtype).expand(batch, -1, -1, -1)


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias)


class StyledConv(nn.Module):
    """Modulated 3x3 conv, noise injection, bias + leaky ReLU."""

    def __init__(self, in_channel: int, out_channel: int, style_dim: int, upsample: bool = False,
                 clamp: float | None = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)
        self.clamp = clamp  # StyleGAN2-ADA's conv_clamp (after the activation); None in the reference trainer

    def forward(self, x, w, noise=None, impl: str = "grouped"):
        x = self.activate(self.noise(self.conv(x, w, impl), noise))
        return x if self.clamp is None else x.clamp(-self.clamp, self.clamp)


class ToRGB(nn.Module):
    """1x1 modulated conv to RGB (no demodulation), plus the upsampled skip image."""

    def __init__(self, in_channel: int, style_dim: int, upsample: bool = True,
                 blur_kernel: tuple[float, ...] = (1, 3, 3, 1), clamp: float | None = None):
        super().__init__()
        self.clamp = clamp  # StyleGAN2-ADA clamps this layer's own output, before the skip is added
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x, w, skip=None, impl: str = "grouped"):
        out = self.conv(x, w, impl) + self.bias.to(x.dtype)
        if self.clamp is not None:
            out = out.clamp(-self.clamp, self.clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class Blur(nn.Module):
    """Depthwise FIR filter; the kernel buffer is the reference's `blur.kernel`."""

    def __init__(self, taps: tuple[float, ...], pad: tuple[int, int], gain: float = 1.0):
        super().__init__()
        self.pad = pad
        self.register_buffer("kernel", make_fir_kernel(taps, gain=gain))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return blur2d(x, self.kernel, self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the skip image; the kernel buffer is the reference's `upsample.kernel`."""

    def __init__(self, taps: tuple[float, ...]):
        super().__init__()
        self.register_buffer("kernel", make_fir_kernel(taps, gain=4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2d(x, self.kernel)
