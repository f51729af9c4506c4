"""The StyleGAN2 discriminator (residual architecture), with the reference trainer's parameter names.

Keys match the `d` entry of the reference PyTorch trainer's checkpoints (`convs.0.0.weight`,
`convs.N.conv1.0.weight`, `convs.N.conv2.0.kernel`, `final_conv.0.weight`,
`final_linear.1.bias`, ...), so a fine-tuning run can resume from a full checkpoint of that
trainer (the paper's generators are trained with it) and its checkpoints load back there.

Widths follow the generator's: the discriminator at resolution r uses the generator's width at r
(channels[i] is the width at 4 * 2**i px), as the reference trainer does with its shared table.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.layers import Blur, EqualLinear, FusedLeakyReLU
from models.stylegan2 import GeneratorArch

BLUR_TAPS = (1, 3, 3, 1)


class EqualConv2d(nn.Module):
    """Plain convolution with equalized learning rate (weight scaled by 1/sqrt(fan_in) at run time)."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channel, in_channel, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size ** 2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_channel)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(x.dtype)
        return F.conv2d(x, (self.weight * self.scale).to(x.dtype), bias, stride=self.stride, padding=self.padding)


class ConvLayer(nn.Sequential):
    """[blur] -> conv (stride 2 when downsampling) -> [bias + leaky ReLU]. A Sequential so the
    reference names (`0.kernel`, `1.weight`, `2.bias`) come out of the positions."""

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, downsample: bool = False,
                 bias: bool = True, activate: bool = True):
        layers: list[nn.Module] = []
        if downsample:
            # Blur before a stride-2 conv; padding so the output is exactly half the input.
            p = (len(BLUR_TAPS) - 2) + (kernel_size - 1)
            layers.append(Blur(BLUR_TAPS, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_channel, out_channel, kernel_size, stride, padding, bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_channel))
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_channel: int, out_channel: int):
        super().__init__()
        self.conv1 = ConvLayer(in_channel, in_channel, 3)
        self.conv2 = ConvLayer(in_channel, out_channel, 3, downsample=True)
        self.skip = ConvLayer(in_channel, out_channel, 1, downsample=True, activate=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Divided by sqrt(2) so the sum of two unit-variance branches stays unit variance.
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    """image [N, 3, R, R] -> realness logit [N, 1]."""

    def __init__(self, arch: GeneratorArch, stddev_group: int = 4):
        super().__init__()
        self.arch = arch
        widths = list(arch.channels)           # widths[i]: 4 * 2**i px
        convs: list[nn.Module] = [ConvLayer(3, widths[-1], 1)]
        for i in range(len(widths) - 1, 0, -1):
            convs.append(ResBlock(widths[i], widths[i - 1]))
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = stddev_group, 1
        self.final_conv = ConvLayer(widths[0] + 1, widths[0], 3)
        self.final_linear = nn.Sequential(EqualLinear(widths[0] * 16, widths[0], activation=True),
                                          EqualLinear(widths[0], 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        r = self.arch.resolution
        assert image.ndim == 4 and image.shape[1:] == (3, r, r), f"image must be [N, 3, {r}, {r}]"
        x = self.convs(image)
        n, c, h, w = x.shape
        # Minibatch standard deviation: one feature map telling D how varied the batch is,
        # which discourages mode collapse. Groups of up to 4 samples, as in StyleGAN2.
        group = min(n, self.stddev_group)
        if n % group:
            group = 1 if n < 2 else math.gcd(n, group)
        y = x.view(group, -1, self.stddev_feat, c // self.stddev_feat, h, w)
        y = torch.sqrt(y.float().var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        y = y.to(x.dtype).repeat(group, 1, h, w)
        x = self.final_conv(torch.cat([x, y], 1))
        return self.final_linear(x.reshape(n, -1))
