"""Choosing and building a synthesis engine: `make_engine(G, cfg)`.

The backends register here by name; base.py knows none of them.
"""

from __future__ import annotations

import dataclasses

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.compiled import CompiledEngine
from live.engines.devices import cpu_has_bf16, resolve_device
from live.engines.eager import EagerEngine
from live.engines.tensorrt import TensorRTEngine
from models.stylegan2 import Generator

BACKENDS: dict[str, type[Engine]] = {"eager": EagerEngine, "compiled": CompiledEngine, "tensorrt": TensorRTEngine}


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
    if cfg.backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {cfg.backend!r}")
    return BACKENDS[cfg.backend](G, cfg)
