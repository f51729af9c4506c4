"""Synthesis engines: eager, compiled (torch.compile + CUDA graph), tensorrt."""

from live.engine.base import BackendUnavailable, Engine, SynthesisGraph, make_engine

__all__ = ["BackendUnavailable", "Engine", "SynthesisGraph", "make_engine"]
