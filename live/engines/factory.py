"""Choosing and building a synthesis engine: `make_engine(G, cfg)`.

The backends register here by name; base.py knows none of them. `auto` takes, for the device,
the first installed backend of AUTO_ORDER, fastest first:
  CUDA: compiled (torch.compile + one CUDA graph a frame), then eager where torch.compile cannot
        build (no working Triton: Windows, GPUs Triton does not support). TensorRT should be faster per
        frame but its first build takes minutes, so it is asked for by name. (No GPU figure exists
        yet: `python -m bench gpu` measures both.)
  CPU:  openvino (bf16 where the CPU has it), then onnxruntime (fp32), then eager (mixed bf16 or
        fp32). Measured on 2 cores (bench/RESULTS.md, "Engines"): openvino bf16 1.1x faster than
        torch.compile per frame, ready in 0.2 s from its cache instead of 7-14 s, and in the live
        loop 30 fps at 31 ms added latency against 20-23 fps at 75-82 ms.
"""

from __future__ import annotations

import dataclasses
import importlib.util

from loguru import logger

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.compiled import CompiledEngine
from live.engines.devices import BackendUnavailable, cpu_has_bf16, resolve_device
from live.engines.eager import EagerEngine
from live.engines.onnxruntime_backend import OnnxRuntimeEngine
from live.engines.openvino_backend import OpenVINOEngine
from live.engines.tensorrt import TensorRTEngine
from models.errors import first_line
from models.stylegan2 import Generator

BACKENDS: dict[str, type[Engine]] = {"eager": EagerEngine, "compiled": CompiledEngine, "tensorrt": TensorRTEngine,
                                     "openvino": OpenVINOEngine, "onnxruntime": OnnxRuntimeEngine}
# What each backend needs installed (the modules a user gets with its extra).
REQUIRES = {"tensorrt": ("torch_tensorrt",), "openvino": ("openvino",),
            "onnxruntime": ("onnxruntime", "onnx", "onnxscript")}
AUTO_ORDER = {"cuda": ("compiled", "eager"), "cpu": ("openvino", "onnxruntime", "eager")}


EXTRAS = {"tensorrt": "tensorrt", "openvino": "openvino", "onnxruntime": "onnx"}


def missing_modules(backend: str) -> list[str]:
    def absent(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is None
        except (ImportError, ValueError):   # a broken install, or a module blocked in sys.modules
            return True
    return [m for m in REQUIRES.get(backend, ()) if absent(m)]


def installed(backend: str) -> bool:
    return not missing_modules(backend)


def auto_backend(device_type: str) -> str:
    return next(b for b in AUTO_ORDER.get(device_type, ("eager",)) if installed(b))


def resolve_engine_config(cfg: EngineConfig) -> EngineConfig:
    """Replace the `auto` choices by what this machine supports. The device is where the engine's
    input and output buffers live (the host for openvino and for host providers of onnxruntime)."""
    if cfg.backend not in BACKENDS and cfg.backend != "auto":
        raise ValueError(f"backend must be auto or one of {sorted(BACKENDS)}, got {cfg.backend!r}")
    device = resolve_device(cfg.device)
    backend = cfg.backend if cfg.backend != "auto" else auto_backend(device.type)
    # Named by the user: say what to install before any precision or device question (tensorrt's own
    # message, from its engine, says more: CUDA only, versions matching torch).
    if backend != "tensorrt" and (missing := missing_modules(backend)):
        raise BackendUnavailable(f"the {backend} backend needs {', '.join(missing)}: "
                                 f"pip install 'live[{EXTRAS[backend]}]'")
    runtime_default, extra = None, {}
    if backend == "openvino":
        from live.engines.openvino_backend import resolve_device_and_precision
        device = resolve_device("cpu") if cfg.device == "auto" else device
        ov_device, runtime_default = resolve_device_and_precision(cfg.openvino_device)
        extra["openvino_device"] = ov_device
    elif backend == "onnxruntime":
        from live.engines.onnxruntime_backend import (
            choose_providers,
            default_precision,
            import_onnxruntime,
            torch_device_for,
        )
        providers = choose_providers(list(cfg.providers), import_onnxruntime().get_available_providers())
        device = resolve_device(torch_device_for(providers)) if cfg.device == "auto" else device
        runtime_default = default_precision(providers)
        extra["providers"] = providers
    if cfg.precision != "auto":
        precision = cfg.precision
    elif runtime_default:
        precision = runtime_default
    else:
        # fp16 on CUDA; mixed bf16 only on CPUs with bf16 instructions; fp32 on anything else (always correct)
        precision = {"cuda": "fp16", "cpu": "bf16" if cpu_has_bf16() else "fp32"}.get(device.type, "fp32")
    return dataclasses.replace(cfg, backend=backend, precision=precision, device=str(device), **extra)


def make_engine(G: Generator, cfg: EngineConfig) -> Engine:
    """Build the backend named by cfg.backend. With `auto`, the first of AUTO_ORDER that builds: one
    installed but broken (a runtime whose libraries do not load) is passed over with a warning."""
    if cfg.backend != "auto":
        resolved = resolve_engine_config(cfg)
        return BACKENDS[resolved.backend](G, resolved)
    problems = []
    for backend in AUTO_ORDER.get(resolve_device(cfg.device).type, ("eager",)):
        if not installed(backend):
            continue
        try:
            resolved = resolve_engine_config(dataclasses.replace(cfg, backend=backend))
            return BACKENDS[backend](G, resolved)
        except BackendUnavailable as e:
            reason = first_line(e, None)
            problems.append(f"{backend}: {reason}")
            logger.warning("the {} backend cannot run here ({}); trying the next", backend, reason)
    raise BackendUnavailable("no synthesis backend could run: " + "; ".join(problems))
