"""The synthesis engine interface: W+ in, image on the device out. Backends: live/engines/factory.py."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from live.config import EngineConfig
from live.engines.devices import AUTOCAST, resolve_device, resolve_dtype
from models.stylegan2 import Generator


class Engine(ABC):
    """Runs synthesis for a fixed batch size. `run` returns the image on `self.device`, in `self.dtype`.

    Backends with static buffers return the same output tensor every call: read or copy it
    before the next `run`.
    """

    name = "base"

    def __init__(self, G: Generator, cfg: EngineConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.dtype = resolve_dtype(cfg.precision)
        self.autocast = AUTOCAST.get(cfg.precision)
        self.batch = cfg.batch
        self.n_latent, self.style_dim, self.resolution = G.n_latent, G.style_dim, G.resolution

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.batch, self.n_latent, self.style_dim)

    def check_input(self, w_plus: torch.Tensor) -> None:
        if tuple(w_plus.shape) != self.input_shape:
            raise ValueError(f"{self.name} engine takes W+ of shape {list(self.input_shape)} "
                             f"([batch, n_latent, style_dim]), got {list(w_plus.shape)}")

    @abstractmethod
    def run(self, w_plus: torch.Tensor) -> torch.Tensor:
        """W+ [B, n_latent, S] -> image [B, 3, R, R] on the engine's device."""

    def describe(self) -> str:
        return f"{self.name} engine, {self.cfg.precision}, {self.device}, batch {self.batch}, {self.resolution}px"
