"""The fast path without TensorRT: static shapes, torch.compile, one CUDA graph per frame.

On CUDA: fp16 by default, the static-weight synthesis compiled by inductor (weights frozen
into constants), warmed up on a side stream, then captured into a single CUDA graph whose
replay is one launch per frame. Input and output live in static buffers.
On the CPU: the same compiled graph without CUDA graphs (useful for tests and the CPU path).
"""

from __future__ import annotations

import copy
import time

import torch
from loguru import logger

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.static_synthesis import StaticSynthesis
from models.stylegan2 import Generator


class CompiledEngine(Engine):
    name = "compiled"

    def __init__(self, G: Generator, cfg: EngineConfig):
        super().__init__(G, cfg)
        synthesis = copy.deepcopy(G.synthesis).to(self.device, self.dtype)
        self.module = StaticSynthesis(synthesis, self.autocast).eval().requires_grad_(False)
        self.fn = self.module
        if cfg.torch_compile:
            # Inductor's own CUDA graphs stay off (modes without "reduce-overhead"): we capture the
            # whole frame ourselves, so the pipeline can put more than synthesis into one graph.
            if "reduce-overhead" in cfg.compile_mode:
                raise ValueError("engine.compile_mode: reduce-overhead would nest CUDA graphs; the compiled "
                                 "backend captures its own (engine.cuda_graph)")
            self.fn = torch.compile(self.module, mode=cfg.compile_mode, fullgraph=True, dynamic=False)
        self.static_in = torch.zeros(self.input_shape, device=self.device, dtype=self.dtype)
        self.static_out: torch.Tensor | None = None
        self.cuda_graph: torch.cuda.CUDAGraph | None = None
        self._warm_up_and_capture(cfg.warmup_iters, capture=cfg.cuda_graph and self.device.type == "cuda")

    def _warm_up_and_capture(self, iters: int, capture: bool) -> None:
        start = time.perf_counter()
        # Freezing turns the (pre-scaled) weights into constants that inductor can fold.
        import torch._inductor.config as inductor_config
        with torch.no_grad(), inductor_config.patch(freezing=True):
            if self.device.type == "cuda":
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    for _ in range(max(iters, 1)):
                        self.static_out = self.fn(self.static_in)
                torch.cuda.current_stream(self.device).wait_stream(side)
                if capture:
                    self.cuda_graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(self.cuda_graph):
                        self.static_out = self.fn(self.static_in)
                torch.cuda.synchronize(self.device)
            else:
                for _ in range(max(iters, 1)):
                    self.static_out = self.fn(self.static_in)
        logger.info("compiled engine ready in {:.1f} s ({}, {}, CUDA graph: {})",
                    time.perf_counter() - start, self.device, self.cfg.precision, self.cuda_graph is not None)

    def run(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_input(w_plus)
        self.static_in.copy_(w_plus, non_blocking=True)
        if self.cuda_graph is not None:
            self.cuda_graph.replay()
            return self.static_out
        with torch.no_grad():
            self.static_out = self.fn(self.static_in)
        return self.static_out
