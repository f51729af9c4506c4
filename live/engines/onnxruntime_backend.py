"""ONNX Runtime synthesis (optional extra `live[onnx]`): one ONNX file, many execution providers.

This is the fast path for machines the other backends miss: Windows with AMD or Intel graphics
(DirectML, `onnxruntime-directml`), Macs (CoreML), NVIDIA without TensorRT (`onnxruntime-gpu`:
CUDA, or ORT's own TensorRT provider), Intel (`onnxruntime-openvino`), and any CPU. Which
provider wheel is installed decides what can run; `choose_providers` picks from it.

The graph is exported once per set of weights (live.engines.onnx_export) into the engine cache.
Input and output are bound to this engine's torch buffers (I/O binding): host memory for host
providers, the CUDA tensors themselves for the CUDA and TensorRT providers, so nothing is copied.
The CPU provider runs fp32 only; fp16 is exported for GPU providers.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from loguru import logger

from live.config import EngineConfig
from live.engines.artifact_cache import artifact_key, engines_dir, prune, touch
from live.engines.base import Engine
from live.engines.devices import BackendUnavailable
from live.engines.onnx_export import (
    INPUT_NAME,
    ONNX_HINT,
    OUTPUT_NAME,
    export_onnx,
    exporter_versions,
)
from models.checkpoint import weights_hash
from models.errors import first_line
from models.stylegan2 import Generator

CPU = "CPUExecutionProvider"
# Fastest first. Short names are what users type. `auto` takes them in this order except TensorRT,
# whose first build per set of weights takes minutes: it is used when named.
PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider",
             "dml": "DmlExecutionProvider", "coreml": "CoreMLExecutionProvider",
             "openvino": "OpenVINOExecutionProvider", "cpu": CPU}
ON_CUDA = {"TensorrtExecutionProvider", "CUDAExecutionProvider"}
ON_HOST_GPU = {"DmlExecutionProvider", "CoreMLExecutionProvider", "OpenVINOExecutionProvider"}
WHEEL = {"TensorrtExecutionProvider": "onnxruntime-gpu (and TensorRT)", "CUDAExecutionProvider": "onnxruntime-gpu",
         "DmlExecutionProvider": "onnxruntime-directml (Windows)", "CoreMLExecutionProvider": "onnxruntime (macOS)",
         "OpenVINOExecutionProvider": "onnxruntime-openvino"}


def import_onnxruntime():
    try:
        import onnxruntime
    except Exception as e:
        raise BackendUnavailable(f"{ONNX_HINT} (import failed: {e})") from None
    return onnxruntime


def choose_providers(requested: list[str], available: list[str]) -> list[str]:
    """The providers to open a session with, preferred first, the CPU always last as the fallback for
    any operator a provider lacks. requested: ["auto"] or names (short or full)."""
    if not requested or [r.lower() for r in requested] == ["auto"]:
        chosen = [p for p in PROVIDERS.values() if p in available and p != "TensorrtExecutionProvider"]
    else:
        chosen = []
        for name in requested:
            full = PROVIDERS.get(name.lower(), name)
            if full not in PROVIDERS.values() and full not in available:
                raise ValueError(f"unknown onnxruntime provider {name!r}; known: {', '.join(PROVIDERS)} "
                                 f"(this install has {', '.join(available)})")
            if full not in available:
                raise BackendUnavailable(f"{full} is not in this onnxruntime (it has {', '.join(available)}); "
                                         f"it comes with {WHEEL.get(full, 'another onnxruntime build')} "
                                         "installed instead of onnxruntime")
            chosen.append(full)
    return [p for p in chosen if p != CPU] + [CPU]


def torch_device_for(providers: list[str]) -> str:
    """Where the engine's buffers live: on the GPU for the CUDA providers (bound in place), else the host."""
    return "cuda" if providers[0] in ON_CUDA and torch.cuda.is_available() else "cpu"


def default_precision(providers: list[str]) -> str:
    return "fp16" if providers[0] in ON_CUDA | {"DmlExecutionProvider"} else "fp32"


class OnnxRuntimeEngine(Engine):
    name = "onnxruntime"

    def __init__(self, G: Generator, cfg: EngineConfig):
        ort = import_onnxruntime()
        self.providers = choose_providers(list(cfg.providers), ort.get_available_providers())
        if cfg.precision == "bf16" or (cfg.precision == "fp16" and self.providers[0] not in ON_CUDA | ON_HOST_GPU):
            raise BackendUnavailable(f"onnxruntime's {self.providers[0]} runs {cfg.precision} poorly or not at "
                                     "all: use --precision fp32 (or auto), or --backend openvino for bf16 on the CPU")
        super().__init__(G, cfg)
        if self.device.type == "cuda" and self.providers[0] not in ON_CUDA:
            raise BackendUnavailable(f"--device {cfg.device} needs onnxruntime's CUDA provider; this install has "
                                     f"{', '.join(self.providers)} (pip install onnxruntime-gpu in place of "
                                     "onnxruntime), or give --device cpu")
        start = time.perf_counter()
        folder = engines_dir(cfg.cache_dir)
        key = artifact_key({"weights": weights_hash(G), **exporter_versions(), "batch": self.batch,
                            "dtype": str(self.dtype)})
        path = folder / f"onnx-{key}.onnx"
        self.session = self._open(ort, G, path, cfg)
        if (folder / "ort-trt").is_dir():
            prune(folder / "ort-trt", "", ".engine")        # the TensorRT provider's own engines
        self.static_out = torch.empty(self.output_shape, device=self.device, dtype=self.dtype)
        self.binding = self.session.io_binding()
        kind, index = ("cuda", self.device.index or 0) if self.device.type == "cuda" else ("cpu", 0)
        element = np.float16 if self.dtype == torch.float16 else np.float32
        self.binding.bind_input(INPUT_NAME, kind, index, element, list(self.input_shape), self.static_in.data_ptr())
        self.binding.bind_output(OUTPUT_NAME, kind, index, element, list(self.output_shape),
                                 self.static_out.data_ptr())
        for _ in range(max(cfg.warmup_iters, 1)):
            self.forward_static()
        self.ready_s = time.perf_counter() - start
        logger.info("onnxruntime engine ready in {:.2f} s ({}, {})", self.ready_s, self.providers[0], cfg.precision)

    def _session_options(self, ort, cfg: EngineConfig):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3            # errors only: its warnings are about its own fallbacks
        if cfg.threads > 0:
            options.intra_op_num_threads = int(cfg.threads)
        options.inter_op_num_threads = 1           # one graph, run sequentially: one pool is enough
        # Idle pool threads would spin after each run, taking the core tracking needs in `live run`.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    def _provider_options(self, folder) -> list:
        index = self.device.index or 0
        out = []
        for p in self.providers:
            if p == "CUDAExecutionProvider":
                out.append((p, {"device_id": index}))
            elif p == "TensorrtExecutionProvider":
                out.append((p, {"device_id": index, "trt_fp16_enable": self.dtype == torch.float16,
                                "trt_engine_cache_enable": True, "trt_engine_cache_path": str(folder / "ort-trt")}))
            else:
                out.append(p)
        return out

    def _open(self, ort, G: Generator, path, cfg: EngineConfig):
        options, providers = self._session_options(ort, cfg), self._provider_options(path.parent)
        session = None
        if path.is_file():
            try:
                session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
                shape = session.get_inputs()[0].shape
                if list(shape) != list(self.input_shape):
                    raise ValueError(f"input {shape}, not {list(self.input_shape)}")
                touch(path)
                self.cache_hit = True
            except Exception as e:
                if self._file_is_sound(ort, path):   # the file is fine: the providers failed, exporting won't help
                    raise BackendUnavailable(f"onnxruntime could not open the synthesis graph with "
                                             f"{', '.join(self.providers)}: {first_line(e)}") from None
                # a truncated or foreign file: export again, do not stop the run
                logger.warning("cached ONNX model {} is unusable ({}); exporting again", path.name,
                               first_line(e, 200))
                session = None
        if session is None:
            logger.info("exporting the synthesis graph to ONNX (once per set of weights)")
            self.cache_hit = False
            export_onnx(G, path, self.batch, self.dtype)
            prune(path.parent, "onnx-", ".onnx")
            try:
                session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
            except Exception as e:
                raise BackendUnavailable(f"onnxruntime could not open the synthesis graph with "
                                         f"{', '.join(self.providers)}: {first_line(e)}") from None
        # A provider whose libraries do not load (CUDA, cuDNN, TensorRT) is dropped silently by
        # onnxruntime, which then runs on the CPU: say so instead of running somewhere else.
        actual = session.get_providers()
        if actual[0] != self.providers[0]:
            raise BackendUnavailable(f"onnxruntime could not start {self.providers[0]} (its libraries did not "
                                     f"load; it would run on {actual[0]}). Check its requirements (CUDA and "
                                     "cuDNN versions for onnxruntime-gpu), or give --providers cpu")
        return session

    def _file_is_sound(self, ort, path) -> bool:
        """Does the CPU provider, always present, open the file with our input shape?"""
        try:
            shape = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_inputs()[0].shape
            return list(shape) == list(self.input_shape)
        except Exception:
            return False

    def forward_static(self) -> torch.Tensor:
        if self.device.type == "cuda":
            torch.cuda.current_stream(self.device).synchronize()   # the input written on torch's stream
        self.session.run_with_iobinding(self.binding)
        return self.static_out

    def describe(self) -> str:
        threads = f", {self.cfg.threads} thread{'s' * (self.cfg.threads != 1)}" if self.cfg.threads else ""
        return (f"onnxruntime engine ({self.providers[0]}), {self.cfg.precision}{threads}, {self.device}, "
                f"batch {self.batch}, {self.resolution}px")
