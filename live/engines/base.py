"""The synthesis engine interface: W+ in, image on the device out. Backends: live/engines/factory.py.

Every engine has a static input buffer `static_in` [batch, n_latent, S] in its dtype on its device
and `forward_static()`, which synthesises from that buffer. `run(w)` copies w in and calls it.
The pipeline's frame graph (live/pipeline/frame_graph.py) writes `static_in` itself and calls
`forward_static()` inside its own CUDA graph capture: the one owner of capture is the pipeline,
and an engine captures its own graph only when it is run on its own (benchmarks, fallback).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from live.config import EngineConfig
from live.engines.devices import AUTOCAST, resolve_device, resolve_dtype
from models.stylegan2 import Generator


class Engine(ABC):
    """Runs synthesis for a fixed batch size. The image comes back on `self.device` as [B, 3, R, R].

    Backends with static buffers return the same output tensor every call: read or copy it
    before the next `run`.
    """

    name = "base"
    capturable = False      # forward_static() may be captured into a CUDA graph

    def __init__(self, G: Generator, cfg: EngineConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.precision)
        self.autocast = AUTOCAST.get(cfg.precision)
        self.batch = cfg.batch
        self.n_latent, self.style_dim, self.resolution = G.n_latent, G.style_dim, G.resolution
        self.static_in = torch.zeros(self.input_shape, device=self.device, dtype=self.dtype)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.batch, self.n_latent, self.style_dim)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.batch, 3, self.resolution, self.resolution)

    def check_input(self, w_plus: torch.Tensor) -> None:
        if tuple(w_plus.shape) != self.input_shape:
            raise ValueError(f"{self.name} engine takes W+ of shape {list(self.input_shape)} "
                             f"([batch, n_latent, style_dim]), got {list(w_plus.shape)}")

    @abstractmethod
    def forward_static(self) -> torch.Tensor:
        """Synthesis of `static_in`: image [B, 3, R, R] on the engine's device."""

    def run(self, w_plus: torch.Tensor) -> torch.Tensor:
        """W+ [B, n_latent, S] -> image [B, 3, R, R] on the engine's device."""
        self.check_input(w_plus)
        self.static_in.copy_(w_plus, non_blocking=True)
        return self.forward_static()

    def describe(self) -> str:
        return f"{self.name} engine, {self.cfg.precision}, {self.device}, batch {self.batch}, {self.resolution}px"
