"""Plain PyTorch synthesis on any device, fp32, fp16 or mixed bf16: the reference the others match."""

from __future__ import annotations

import copy

import torch

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.static_synthesis import StaticSynthesis
from models.stylegan2 import Generator


class EagerEngine(Engine):
    name = "eager"

    def __init__(self, G: Generator, cfg: EngineConfig):
        super().__init__(G, cfg)
        synthesis = copy.deepcopy(G.synthesis).to(self.device, self.dtype)
        self.module = StaticSynthesis(synthesis, self.autocast).eval().requires_grad_(False)

    def forward_static(self) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(self.static_in)

    def run(self, w_plus: torch.Tensor) -> torch.Tensor:
        # No static graph behind it, so any batch size is fine.
        if w_plus.ndim != 3 or tuple(w_plus.shape[1:]) != self.input_shape[1:]:
            raise ValueError(f"eager engine takes W+ of shape [B, {self.n_latent}, {self.style_dim}], "
                             f"got {list(w_plus.shape)}")
        with torch.inference_mode():
            return self.module(w_plus.to(self.device, self.dtype, non_blocking=True))
