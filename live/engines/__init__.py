"""Synthesis engines: eager, compiled (torch.compile + CUDA graph), tensorrt."""

from live.engines.base import Engine
from live.engines.devices import BackendUnavailable
from live.engines.factory import make_engine
from live.engines.static_synthesis import StaticSynthesis

__all__ = ["BackendUnavailable", "Engine", "StaticSynthesis", "make_engine"]
