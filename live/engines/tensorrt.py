"""TensorRT synthesis through torch-tensorrt (optional extra `live[tensorrt]`).

The synthesis graph is exported with torch.export (live.engines.export), compiled by
torch_tensorrt.dynamo in the engine's precision, and the result is cached on disk keyed by
the generator's weights hash, the GPU, and the TensorRT / torch-tensorrt versions, so the
minutes-long build runs once per machine and model.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from loguru import logger

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.devices import BackendUnavailable
from live.engines.export import export_synthesis
from live.paths import cache_dir
from models.checkpoint import weights_hash
from models.stylegan2 import Generator

INSTALL_HINT = ("the tensorrt backend needs torch-tensorrt and TensorRT on a CUDA machine: "
                "pip install 'live[tensorrt]' (it must match your torch version). "
                "Meanwhile use --backend compiled, the fast path without TensorRT.")


def import_torch_tensorrt():
    try:
        import torch_tensorrt  # noqa: F401
    except Exception as e:  # ImportError, or a broken install whose libraries fail to load
        raise BackendUnavailable(f"{INSTALL_HINT} (import failed: {e})") from None
    return torch_tensorrt


def engine_cache_key(weights_sha256: str, gpu_name: str, trt_version: str, torch_trt_version: str,
                     precision: str, input_shape: tuple[int, ...]) -> str:
    """Everything that makes a serialized TensorRT engine valid or invalid, hashed."""
    parts = {"weights": weights_sha256, "gpu": gpu_name, "tensorrt": trt_version,
             "torch_tensorrt": torch_trt_version, "torch": torch.__version__,
             "precision": precision, "input_shape": list(input_shape)}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


class TensorRTEngine(Engine):
    name = "tensorrt"

    def __init__(self, G: Generator, cfg: EngineConfig):
        super().__init__(G, cfg)
        torch_tensorrt = import_torch_tensorrt()
        if self.device.type != "cuda":
            raise BackendUnavailable("the tensorrt backend runs on a CUDA device only; use --backend compiled "
                                     "or eager on the CPU")
        import tensorrt
        key = engine_cache_key(weights_hash(G), torch.cuda.get_device_name(self.device), tensorrt.__version__,
                               torch_tensorrt.__version__, cfg.precision, self.input_shape)
        path = Path(cfg.cache_dir or cache_dir() / "engines") / f"synthesis-{key}.ep"
        example = torch.zeros(self.input_shape, device=self.device, dtype=self.dtype)
        if path.is_file():
            logger.info("loading cached TensorRT engine {}", path)
            self.module = torch.export.load(str(path)).module()
        else:
            logger.info("building TensorRT engine (once per model and GPU; this takes minutes)")
            exported = export_synthesis(G, self.batch, self.dtype, self.device)
            self.module = torch_tensorrt.dynamo.compile(exported, [example])
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".partial")
            try:
                torch_tensorrt.save(self.module, str(tmp), arg_inputs=[example])
            except TypeError:  # torch-tensorrt < 2.5 calls it `inputs`
                torch_tensorrt.save(self.module, str(tmp), inputs=[example])
            tmp.replace(path)
            logger.info("cached TensorRT engine at {}", path)
        with torch.no_grad():
            for _ in range(max(cfg.warmup_iters, 1)):
                self.module(example)
        torch.cuda.synchronize(self.device)

    def run(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_input(w_plus)
        with torch.no_grad():
            return self.module(w_plus.to(self.device, self.dtype, non_blocking=True))
