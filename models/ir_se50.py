"""The IR-SE-50 backbone (InsightFace's ResNet-50 with squeeze-excitation) shared by the e4e encoder
and the ArcFace identity network, with their state-dict key names (`input_layer`, `body.N`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# IR-SE-50: (in, depth, units) per stage, the first unit of each stage strides by 2.
IR_SE_50_STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class BottleneckIRSE(nn.Module):
    def __init__(self, in_ch: int, depth: int, stride: int):
        super().__init__()
        if in_ch == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_ch, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_ch), nn.Conv2d(in_ch, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SEModule(depth))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


def ir_se50_input_layer() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))


def ir_se50_body() -> nn.Sequential:
    """24 bottleneck units in four stages; the first unit of each stage strides by 2."""
    units = []
    for in_ch, depth, count in IR_SE_50_STAGES:
        units.append(BottleneckIRSE(in_ch, depth, 2))
        units += [BottleneckIRSE(depth, depth, 1) for _ in range(count - 1)]
    return nn.Sequential(*units)
