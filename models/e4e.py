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

from models.checkpoint import CheckpointError, safe_torch_load


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


def n_styles_for(resolution: int) -> int:
    return 2 * int(math.log2(resolution)) - 2
