"""The synthesis as one static graph: what every engine runs, compiles, captures or exports."""

from __future__ import annotations

import torch
from torch import nn

from models.stylegan2 import SynthesisNetwork


class StaticSynthesis(nn.Module):
    """The whole synthesis as one static graph: constant noise, static-weight modulation.

    This is what gets compiled, captured into a CUDA graph, exported and handed to TensorRT:
    one input (W+), one output (the image), no Python-side branching on data.
    """

    def __init__(self, synthesis: SynthesisNetwork, autocast: torch.dtype | None = None):
        super().__init__()
        self.synthesis = synthesis
        self.autocast = autocast

    def forward(self, w_plus: torch.Tensor) -> torch.Tensor:
        if self.autocast is None:
            return self.synthesis(w_plus, noise_mode="const", impl="static")
        with torch.autocast(w_plus.device.type, dtype=self.autocast):
            image = self.synthesis(w_plus, noise_mode="const", impl="static")
        return image.float()
