"""TensorRT synthesis through torch-tensorrt (optional extra `live[tensorrt]`).

The synthesis graph is exported with torch.export (live.engines.export) and compiled by
torch_tensorrt.dynamo with the engine's precision enabled (fp16 kernels for fp16; bf16 for
bf16, where the GPU has them). The engine is built refittable and cached on disk keyed by what
its structure depends on: the generator's architecture (not its weights), the precision, the
input shape, the GPU and the TensorRT / torch-tensorrt / torch versions. Loading it for a
generator of that architecture refits its weights (seconds), so the minutes-long build runs once
per architecture and GPU, not once per avatar: every pivotal-tuned avatar reuses it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch
from loguru import logger

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.devices import BackendUnavailable
from live.engines.export import export_synthesis
from live.paths import cache_dir
from models.atomic_files import atomic_path
from models.stylegan2 import Generator

INSTALL_HINT = ("the tensorrt backend needs torch-tensorrt and TensorRT on a CUDA machine: "
                "pip install 'live[tensorrt]' (it must match your torch version). "
                "Meanwhile use --backend compiled, the fast path without TensorRT.")

# The kernels TensorRT may choose from, per live precision.
ENABLED_PRECISIONS = {"fp32": {torch.float32}, "fp16": {torch.float16}, "bf16": {torch.float32, torch.bfloat16}}
# The dtype the graph is exported in: fp16 exports half weights; bf16 exports fp32 and lets TensorRT pick bf16.
EXPORT_DTYPE = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.float32}


def import_torch_tensorrt():
    try:
        import torch_tensorrt  # noqa: F401
    except Exception as e:  # ImportError, or a broken install whose libraries fail to load
        raise BackendUnavailable(f"{INSTALL_HINT} (import failed: {e})") from None
    return torch_tensorrt


def architecture_key(G: Generator) -> dict:
    """What an engine's structure depends on; weights are refitted, so they are not part of it."""
    return G.arch.to_dict()


def engine_cache_key(architecture: dict, gpu_name: str, trt_version: str, torch_trt_version: str,
                     precision: str, input_shape: tuple[int, ...]) -> str:
    """Everything that makes a serialized, refittable TensorRT engine valid or invalid, hashed."""
    parts = {"architecture": architecture, "gpu": gpu_name, "tensorrt": trt_version,
             "torch_tensorrt": torch_trt_version, "torch": torch.__version__,
             "precision": precision, "input_shape": list(input_shape), "refittable": True}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def refittable_option(compile_fn) -> dict:
    """The keyword that makes torch-tensorrt build a refittable engine; its name changed across
    releases (refit 2.4, make_refittable 2.5, immutable_weights=False 2.6+)."""
    params = inspect.signature(compile_fn).parameters
    if "immutable_weights" in params:
        return {"immutable_weights": False}
    if "make_refittable" in params:
        return {"make_refittable": True}
    if "refit" in params:
        return {"refit": True}
    raise BackendUnavailable(f"this torch-tensorrt cannot build refittable engines; {INSTALL_HINT}")


def inputs_keyword(fn) -> str:
    """torch-tensorrt >= 2.5 calls the example inputs `arg_inputs`, older releases `inputs`."""
    return "arg_inputs" if "arg_inputs" in inspect.signature(fn).parameters else "inputs"


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(self, G: Generator, cfg: EngineConfig):
        super().__init__(G, cfg)
        torch_tensorrt = import_torch_tensorrt()
        if self.device.type != "cuda":
            raise BackendUnavailable("the tensorrt backend runs on a CUDA device only; use --backend compiled "
                                     "or eager on the CPU")
        import tensorrt
        self.dtype = EXPORT_DTYPE[cfg.precision]
        self.static_in = torch.zeros(self.input_shape, device=self.device, dtype=self.dtype)
        key = engine_cache_key(architecture_key(G), torch.cuda.get_device_name(self.device), tensorrt.__version__,
                               torch_tensorrt.__version__, cfg.precision, self.input_shape)
        path = Path(cfg.cache_dir or cache_dir() / "engines") / f"synthesis-{key}.ep"
        exported = export_synthesis(G, self.batch, self.dtype, self.device)
        if path.is_file():
            self.module = self._load_and_refit(torch_tensorrt, path, exported)
        else:
            self.module = self._build(torch_tensorrt, path, exported)
        with torch.no_grad():
            for _ in range(max(cfg.warmup_iters, 1)):
                self.forward_static()
        torch.cuda.synchronize(self.device)

    def _build(self, torch_tensorrt, path: Path, exported):
        logger.info("building TensorRT engine ({}, once per architecture and GPU; this takes minutes)",
                    self.cfg.precision)
        compile_fn = torch_tensorrt.dynamo.compile
        module = compile_fn(exported, [self.static_in], enabled_precisions=ENABLED_PRECISIONS[self.cfg.precision],
                            **refittable_option(compile_fn))
        save = torch_tensorrt.save
        with atomic_path(path) as tmp:   # keeps the .ep suffix torch_tensorrt.save reads the format from
            save(module, str(tmp), **{inputs_keyword(save): [self.static_in]})
        logger.info("cached TensorRT engine at {}", path)
        return module

    def _load_and_refit(self, torch_tensorrt, path: Path, exported):
        logger.info("loading cached TensorRT engine {} and refitting this generator's weights", path)
        module = torch_tensorrt.load(str(path)).module()
        refit = torch_tensorrt.dynamo.refit_module_weights
        return refit(compiled_module=module, new_weight_module=exported, **{inputs_keyword(refit): [self.static_in]})

    def forward_static(self) -> torch.Tensor:
        with torch.no_grad():
            return self.module(self.static_in)
