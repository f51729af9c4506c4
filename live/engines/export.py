"""torch.export of the synthesis graph: the portable, Python-free form TensorRT compiles."""

from __future__ import annotations

import copy

import torch

from live.engines.static_synthesis import StaticSynthesis
from models.stylegan2 import Generator


def export_synthesis(G: Generator, batch: int = 1, dtype: torch.dtype = torch.float32,
                     device: str | torch.device = "cpu") -> torch.export.ExportedProgram:
    """Export W+ [batch, n_latent, S] -> image as one static graph (constant noise, static weights)."""
    module = StaticSynthesis(copy.deepcopy(G.synthesis)).to(device, dtype).eval().requires_grad_(False)
    example = torch.zeros(batch, G.n_latent, G.style_dim, device=device, dtype=dtype)
    with torch.no_grad():
        return torch.export.export(module, (example,), strict=False)
