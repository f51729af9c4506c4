"""The fast path without TensorRT: static shapes, torch.compile, and a CUDA graph.

On CUDA: fp16 by default, the static-weight synthesis compiled by inductor with frozen weights
(constants it can fold), warmed up on a side stream. Compilation and every later call run in one
context (`_context`: no_grad and freezing): dynamo guards on grad mode, so a call outside it
would compile a second, different graph. The pipeline captures `forward_static()` inside its own
frame graph; only when the engine is run on its own (`run`, benchmarks, the pipeline's fallback)
does it capture a graph of its own, lazily, on the first such call.
On the CPU: the same compiled function, no graph.
"""

from __future__ import annotations

import contextlib
import copy
import time

import torch
from loguru import logger

from live.config import EngineConfig
from live.engines.base import Engine
from live.engines.devices import BackendUnavailable
from live.engines.static_synthesis import StaticSynthesis
from models.errors import first_line
from models.stylegan2 import Generator


def check_compile_mode(mode: str) -> None:
    """Inductor's own CUDA graphs must stay off: the pipeline captures the whole frame (blend, synthesis,
    post-process) into one graph itself, and a mode whose options turn on `triton.cudagraphs`
    (reduce-overhead, max-autotune) would capture inside that capture. Asked of Inductor itself, so a
    new mode of a later torch is judged by its options, not by its name."""
    from torch._inductor import list_mode_options
    try:
        options = list_mode_options(mode)
    except RuntimeError as e:   # an unknown mode: Inductor's message lists the known ones
        raise ValueError(f"engine.compile_mode: {first_line(e, None)}") from None
    if options.get("triton.cudagraphs"):
        raise ValueError(f"engine.compile_mode {mode!r} turns on Inductor's CUDA graphs, which would nest inside "
                         "the frame's own CUDA graph; use max-autotune-no-cudagraphs (or default)")


class CompiledEngine(Engine):
    name = "compiled"
    capturable = True

    def __init__(self, G: Generator, cfg: EngineConfig):
        super().__init__(G, cfg)
        synthesis = copy.deepcopy(G.synthesis).to(self.device, self.dtype)
        self.module = StaticSynthesis(synthesis, self.autocast).eval().requires_grad_(False)
        self.fn = self.module
        self.static_out: torch.Tensor | None = None
        self.cuda_graph: torch.cuda.CUDAGraph | None = None
        if cfg.torch_compile:
            check_compile_mode(cfg.compile_mode)
        try:
            if cfg.torch_compile:
                self.fn = torch.compile(self.module, mode=cfg.compile_mode, fullgraph=True, dynamic=False)
            self._warm_up(cfg.warmup_iters)    # torch.compile builds here, on the first call
        except Exception as e:
            # No working Triton (Windows, GPUs it does not support), a compiler or driver that fails: the
            # backend cannot run on this machine. `auto` passes on to eager; a user who named it reads why.
            raise BackendUnavailable(f"the compiled backend could not build the synthesis here "
                                     f"({type(e).__name__}: {first_line(e, 300)}); use --backend eager, or "
                                     f"--no-torch-compile for the CUDA graph alone") from e

    @contextlib.contextmanager
    def _context(self):
        """Where the compiled function is built and always called: no autograd, frozen weights."""
        import torch._inductor.config as inductor_config
        with torch.no_grad(), inductor_config.patch(freezing=True):
            yield

    def _warm_up(self, iters: int) -> None:
        start = time.perf_counter()
        if self.device.type == "cuda":
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                for _ in range(max(iters, 1)):
                    self.forward_static()
            torch.cuda.current_stream(self.device).wait_stream(side)
            torch.cuda.synchronize(self.device)
        else:
            for _ in range(max(iters, 1)):
                self.forward_static()
        logger.info("compiled engine ready in {:.1f} s ({}, {})", time.perf_counter() - start, self.device,
                    self.cfg.precision)

    def forward_static(self) -> torch.Tensor:
        with self._context():
            self.static_out = self.fn(self.static_in)
        return self.static_out

    def run(self, w_plus: torch.Tensor) -> torch.Tensor:
        self.check_input(w_plus)
        self.static_in.copy_(w_plus, non_blocking=True)
        if self.device.type != "cuda" or not self.cfg.cuda_graph:
            return self.forward_static()
        if self.cuda_graph is None:
            self._capture()
        self.cuda_graph.replay()
        return self.static_out

    def _capture(self) -> None:
        """This engine's own graph of the synthesis alone (the frame graph does not need it)."""
        torch.cuda.synchronize(self.device)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.forward_static()
        torch.cuda.synchronize(self.device)
        self.cuda_graph = graph
        logger.info("compiled engine: synthesis captured into its own CUDA graph")
