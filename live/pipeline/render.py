"""The render stage: delta_p -> W+ (latent blend kernel) -> synthesis engine -> output frame.

On the CPU: the Numba blend, the engine, the Numba post-process. On CUDA the whole frame stays
on the device, on this stage's own stream (so the next frame's tracking overlaps it): the CuPy
blend reads the torch tensors through DLPack, the engine runs (its synthesis is one CUDA graph
with the compiled backend), the CuPy post-process writes the output frame, and one
asynchronous copy into pinned host memory brings it back. With the compiled backend and
engine.cuda_graph, blend, synthesis and post-process are one CUDA graph (live/pipeline/frame_graph.py);
if that capture fails the three launches above run instead, with a warning.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from loguru import logger

from kernels.latent_blend import latent_blend, layer_strength
from kernels.postprocess import postprocess
from live.pipeline.messages import Motion, Rendered
from live.pipeline.slots import LatestSlot, Stage


class Renderer:
    """One frame: normalised delta [P] -> HxWx3 uint8 at the output size."""

    def __init__(self, engine, w_s: torch.Tensor, w_avg: torch.Tensor, directions, out_size: tuple[int, int],
                 truncation: float = 1.0, strength: float = 1.0, latent_smoothing: float = 0.0):
        self.engine = engine
        self.device = torch.device(engine.device)
        self.cuda = self.device.type == "cuda"
        self.out_w, self.out_h = int(out_size[0]), int(out_size[1])
        self.psi, self.smoothing = float(truncation), float(latent_smoothing)
        L = w_s.shape[0]
        dev = self.device
        self.w_s = w_s.detach().float().contiguous().to(dev)
        self.w_avg = w_avg.detach().float().contiguous().to(dev)
        self.A = directions.weight.float().contiguous().to(dev)
        self.bias = directions.bias.float().contiguous().to(dev)
        self.m = torch.from_numpy(layer_strength(L, directions.num_layers_shift, strength)).to(dev)
        self.prev_w: torch.Tensor | None = None
        self.dtype = engine.dtype if hasattr(engine, "dtype") else torch.float32
        if self.cuda:
            import cupy  # noqa: F401  (the GPU path needs the gpu extra)
            self.stream = torch.cuda.Stream(device=dev)
            self.host_frame = torch.empty((self.out_h, self.out_w, 3), dtype=torch.uint8).pin_memory()
            self.dp_host = torch.empty(self.A.shape[1], dtype=torch.float32).pin_memory()
            self.frame_graph = self._capture_frame_graph()

    def _capture_frame_graph(self):
        if not (self.engine.name == "compiled" and self.engine.cfg.cuda_graph):
            return None
        from live.pipeline.frame_graph import FrameGraph
        try:
            graph = FrameGraph(self.engine, self.w_s, self.w_avg, self.A, self.bias, self.m, self.psi,
                               self.smoothing, self.out_h, self.out_w, self.stream)
        except Exception as e:  # a driver or CuPy that cannot capture: three launches per frame instead
            logger.warning("could not capture the frame into one CUDA graph ({}); running blend, synthesis and "
                           "post-process as separate launches", str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
            return None
        logger.info("frame graph captured: blend, synthesis and post-process replay as one CUDA graph")
        return graph

    def warm_up(self) -> None:
        """One frame before the clock starts (compiles, first-call costs); the latent smoothing
        forgets it, so the first real frame is not pulled toward it."""
        self(np.zeros(self.A.shape[1], np.float32))
        self.prev_w = None

    def blend(self, delta: np.ndarray) -> torch.Tensor:
        if self.cuda:
            import cupy
            self.dp_host.copy_(torch.from_numpy(np.asarray(delta, np.float32)))
            dp = self.dp_host.to(self.device, non_blocking=True)
            with cupy.cuda.ExternalStream(torch.cuda.current_stream(self.device).cuda_stream):
                w = latent_blend(*(cupy.from_dlpack(t) for t in (self.w_s, self.w_avg, self.A, self.bias, dp, self.m)),
                                 psi=self.psi, impl="cupy")
            w = torch.from_dlpack(w)
        else:
            w = torch.from_numpy(latent_blend(self.w_s.numpy(), self.w_avg.numpy(), self.A.numpy(),
                                              self.bias.numpy(), np.asarray(delta, np.float32), self.m.numpy(),
                                              psi=self.psi, impl="numba"))
        if self.smoothing > 0:
            if self.prev_w is not None:
                w = torch.lerp(w, self.prev_w, self.smoothing)
            self.prev_w = w
        return w

    def __call__(self, delta: np.ndarray) -> np.ndarray:
        if not self.cuda:
            image = self.engine.run(self.blend(delta)[None])
            return postprocess(image[0].float().numpy(), self.out_h, self.out_w, impl="numba")
        if self.frame_graph is not None:
            self.dp_host.copy_(torch.from_numpy(np.asarray(delta, np.float32)))
            self.frame_graph.replay(self.dp_host, self.host_frame)
            return self.host_frame.numpy().copy()
        import cupy
        with torch.cuda.stream(self.stream):
            w = self.blend(delta)
            image = self.engine.run(w[None].to(self.dtype))
            with cupy.cuda.ExternalStream(self.stream.cuda_stream):
                frame = postprocess(cupy.from_dlpack(image[0].float()), self.out_h, self.out_w, impl="cupy")
            self.host_frame.copy_(torch.from_dlpack(frame), non_blocking=True)
        self.stream.synchronize()
        return self.host_frame.numpy().copy()


class RenderStage(Stage):
    def __init__(self, inp: LatestSlot, out: LatestSlot, renderer: Renderer, controls):
        super().__init__("render", inp, out)
        self.renderer, self.controls = renderer, controls
        self.last_frame: np.ndarray | None = None

    def process(self, m: Motion) -> Rendered:
        t0 = time.perf_counter()
        if self.controls.frozen and self.last_frame is not None:
            frame = self.last_frame
        else:
            with torch.no_grad():
                frame = self.renderer(m.delta_norm)
            self.last_frame = frame
        stamps = {**m.stamps, "render_start": t0, "render": time.perf_counter()}
        return Rendered(m.index, m.t_source, frame, m.driver, m.found, stamps)
