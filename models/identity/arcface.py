"""The ArcFace IR-SE-50 identity network (TreB1eN's InsightFace_Pytorch `model_ir_se50.pth`, which
pSp, e4e and the paper use for identity), read safely and checked key by key."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from models.errors import CheckpointError
from models.ir_se50 import ir_se50_body, ir_se50_input_layer
from models.weights_io import safe_torch_load, state_mismatch


class ArcFace(nn.Module):
    """112x112 face crop in [-1, 1] -> unit-length 512-d embedding."""

    def __init__(self):
        super().__init__()
        self.input_layer, self.body = ir_se50_input_layer(), ir_se50_body()
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.4), nn.Flatten(),
                                          nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1:] == (3, 112, 112), "ArcFace takes [N, 3, 112, 112]"
        x = self.output_layer(self.body(self.input_layer(x)))
        return x / x.norm(dim=1, keepdim=True)


def build_arcface(path: str | Path) -> ArcFace:
    state = safe_torch_load(path, CheckpointError, "the IR-SE-50 ArcFace weights (model_ir_se50.pth)")
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors; expected model_ir_se50.pth")
    net = ArcFace()
    mismatch = state_mismatch(net.state_dict(), state)
    if mismatch:
        raise CheckpointError(f"{path}: not the IR-SE-50 ArcFace network: {mismatch}")
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)
