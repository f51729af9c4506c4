"""e4e encoder checkpoints (Tov et al. 2021), as the paper releases them (`e4e-voxceleb.pt`).

The checkpoint is a torch file whose key `e` (or `state_dict` with an `encoder.` prefix, as
the e4e trainer writes) holds the encoder's state dict: an IR-SE-50 backbone (`input_layer`,
`body.N`) and one map-to-style head per W+ code (`styles.N`). Read with weights_only only.
This module identifies and checks such files; the encoder network itself is used by
avatar inversion.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint import safe_torch_load
from models.errors import CheckpointError
from models.ir_se50 import ir_se50_body, ir_se50_input_layer
from models.layers import EqualLinear
from models.weights_io import state_mismatch

COARSE, MIDDLE = 3, 7  # style heads 0-2 read 16 px features, 3-6 32 px, the rest 64 px


class GradualStyleBlock(nn.Module):
    """Feature map -> one W code: stride-2 convs down to 1 px, then an equalised linear layer."""

    def __init__(self, channels: int, spatial: int):
        super().__init__()
        layers = []
        for _ in range(int(math.log2(spatial))):
            layers += [nn.Conv2d(channels, channels, 3, 2, 1), nn.LeakyReLU(0.01)]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(channels, channels, lr_mul=1.0)
        self.channels = channels

    def forward(self, x):
        return self.linear(self.convs(x).view(-1, self.channels))


class Encoder4Editing(nn.Module):
    """e4e (Tov et al. 2021) with the IR-SE-50 backbone: 256 px image in [-1, 1] -> W+ offsets.

    Codes = w0 (head 0, from the deepest features) repeated, plus per-layer deltas from heads
    1.. on a feature pyramid; the caller adds the generator's mean code (pSp's
    start_from_latent_avg)."""

    def __init__(self, n_styles: int, style_dim: int = 512):
        super().__init__()
        self.n_styles = n_styles
        self.input_layer, self.body = ir_se50_input_layer(), ir_se50_body()
        self.styles = nn.ModuleList(
            GradualStyleBlock(style_dim, 16 if i < COARSE else 32 if i < MIDDLE else 64) for i in range(n_styles))
        self.latlayer1 = nn.Conv2d(256, 512, 1)
        self.latlayer2 = nn.Conv2d(128, 512, 1)

    @staticmethod
    def _upsample_add(x, y):
        return F.interpolate(x, size=y.shape[2:], mode="bilinear", align_corners=True) + y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_layer(x)
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == 6:
                c1 = x       # 64 px, 128 channels
            elif i == 20:
                c2 = x       # 32 px, 256 channels
        c3 = x               # 16 px, 512 channels
        w = self.styles[0](c3).unsqueeze(1).repeat(1, self.n_styles, 1)
        features = c3
        deltas = [torch.zeros_like(w[:, 0])]
        for i in range(1, self.n_styles):
            if i == COARSE:
                p2 = self._upsample_add(c3, self.latlayer1(c2))
                features = p2
            elif i == MIDDLE:
                features = self._upsample_add(p2, self.latlayer2(c1))
            deltas.append(self.styles[i](features))
        return w + torch.stack(deltas, 1)


def read_e4e_state(path: str | Path) -> dict[str, torch.Tensor]:
    obj = safe_torch_load(Path(path), mmap=True)
    if isinstance(obj, dict) and isinstance(obj.get("e"), dict):
        state = obj["e"]
    elif isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state = {k.removeprefix("encoder."): v for k, v in obj["state_dict"].items() if k.startswith("encoder.")}
    else:
        keys = ", ".join(map(str, obj))[:200] if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: not an e4e checkpoint: expected the encoder's state dict under 'e' "
                              f"(or 'state_dict' with 'encoder.' keys), found {keys}")
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: the e4e state dict is empty or holds non-tensors")
    return state


def load_e4e(path: str | Path, n_styles: int | None = None) -> tuple[Encoder4Editing, torch.Tensor | None]:
    """The encoder (eval, fp32) and the checkpoint's latent_avg if it has one. Every key and
    shape is checked against the network; a mismatch names the first few."""
    path = Path(path)
    state = read_e4e_state(path)
    found = len({k for k in state if re.fullmatch(r"styles\.\d+\.linear\.weight", k)})
    n = n_styles or found
    if n_styles and found != n_styles:
        raise CheckpointError(f"{path}: an e4e encoder for {found} W+ codes, but the generator has {n_styles}: "
                              f"they were not trained together")
    enc = Encoder4Editing(n)
    mismatch = state_mismatch(enc.state_dict(), state)
    if mismatch:
        raise CheckpointError(f"{path}: not the e4e IR-SE-50 encoder: {mismatch}")
    enc.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    obj = safe_torch_load(path, mmap=True)
    latent_avg = obj.get("latent_avg") if isinstance(obj, dict) else None
    return enc.eval().requires_grad_(False), (latent_avg.float() if isinstance(latent_avg, torch.Tensor) else None)


def check_e4e_file(path: str | Path) -> str:
    """Identify an e4e encoder file; raises CheckpointError naming what does not fit."""
    state = read_e4e_state(path)
    first = state.get("input_layer.0.weight")
    if first is None or tuple(first.shape) != (64, 3, 3, 3):
        raise CheckpointError(f"{path}: no IR-SE input layer (input_layer.0.weight [64, 3, 3, 3])")
    styles = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"styles\.(\d+)\.linear\.weight", k))})
    if not styles or styles != list(range(len(styles))):
        raise CheckpointError(f"{path}: the map-to-style heads styles.N are missing or incomplete")
    n_styles = len(styles)
    resolution = 2 ** ((n_styles + 2) // 2)
    if n_styles % 2 or resolution < 8:
        raise CheckpointError(f"{path}: {n_styles} style heads do not match any StyleGAN2 resolution")
    for k, v in state.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: tensor {k} holds NaN or Inf values; the file is damaged")
    dim = state["styles.0.linear.weight"].shape[0]
    n_params = sum(v.numel() for v in state.values())
    return f"e4e encoder, {n_styles} W+ codes of {dim} (a {resolution} px generator), {n_params / 1e6:.1f} M values"

