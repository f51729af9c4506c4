"""The synthesis engine interface: W+ in, image on the device out.

`make_engine(G, cfg)` picks the backend named by the config. Every backend runs the
same function, `SynthesisGraph`, so their outputs are comparable.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod

import torch
from torch import nn

from live.config import EngineConfig
from models.stylegan2 import Generator, SynthesisNetwork

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.float32}
# bf16 is mixed precision: weights and the image stay fp32, the convolutions run in bfloat16
# under autocast. On CPUs with AVX512-BF16 (or AMX) oneDNN runs them 2-3x faster than fp32;
# a whole-bf16 network is slower there (its element-wise ops are not vectorised as well).
AUTOCAST = {"bf16": torch.bfloat16}


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run here; the message says what to install or choose instead."""


class SynthesisGraph(nn.Module):
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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"device {name!r} asked for, but this torch has no usable CUDA "
                                 f"(torch {torch.__version__}); use --device cpu or install a CUDA build of torch")
    return device


def resolve_dtype(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


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


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX), where mixed bf16
    beats fp32; elsewhere bf16 is emulated and slower. Linux reads /proc/cpuinfo; other systems
    answer False (fp32, always correct)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_engine_config(cfg: EngineConfig) -> EngineConfig:
    """Replace the `auto` choices by what this machine supports: compiled fp16 on CUDA; on the CPU
    eager, in mixed bf16 where the CPU has bf16 instructions, else fp32."""
    device = resolve_device(cfg.device)
    on_cuda = device.type == "cuda"
    backend = cfg.backend if cfg.backend != "auto" else ("compiled" if on_cuda else "eager")
    if cfg.precision != "auto":
        precision = cfg.precision
    else:
        precision = "fp16" if on_cuda else ("bf16" if cpu_has_bf16() else "fp32")
    return dataclasses.replace(cfg, backend=backend, precision=precision, device=str(device))


def make_engine(G: Generator, cfg: EngineConfig) -> Engine:
    """Build the backend named by cfg.backend (eager, compiled, tensorrt or auto)."""
    cfg = resolve_engine_config(cfg)
    from live.engine.compiled import CompiledEngine
    from live.engine.eager import EagerEngine
    from live.engine.tensorrt import TensorRTEngine
    backends = {"eager": EagerEngine, "compiled": CompiledEngine, "tensorrt": TensorRTEngine}
    if cfg.backend not in backends:
        raise ValueError(f"backend must be one of {sorted(backends)}, got {cfg.backend!r}")
    return backends[cfg.backend](G, cfg)
