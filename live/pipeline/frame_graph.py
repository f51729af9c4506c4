"""The whole GPU part of one frame as one CUDA graph: latent blend -> synthesis -> post-process.

Without it a frame is three launches from Python (the CuPy blend, the engine's synthesis graph,
the CuPy post-process) plus the small torch ops between them; captured together, a frame is
one `replay()`: its launch cost no longer grows with the number of kernels, and the CPU is free
for tracking the next frame as soon as the replay is queued.

What can be captured: every buffer is allocated before capture and read or written in place
(the kernels take `out=`, the CuPy views of torch tensors are made once through DLPack), and
nothing in the graph synchronises or allocates through CuPy. Per frame only the contents of
`dp` (and the smoothing weight) change; they are copied in before the replay.

Needs the compiled engine on CUDA (its `fn` is a capturable, already warmed-up function with
a static input buffer); the Renderer falls back to three launches where capture fails.
"""

from __future__ import annotations

import torch

from kernels.latent_blend import latent_blend
from kernels.postprocess import postprocess


class FrameGraph:
    def __init__(self, engine, w_s: torch.Tensor, w_avg: torch.Tensor, A: torch.Tensor, bias: torch.Tensor,
                 m: torch.Tensor, psi: float, smoothing: float, out_h: int, out_w: int, stream: torch.cuda.Stream):
        import cupy
        self.engine, self.stream, self.psi = engine, stream, float(psi)
        dev = w_s.device
        L, S = w_s.shape
        # Static buffers: the graph reads and writes exactly these addresses on every replay.
        self.dp = torch.zeros(A.shape[1], device=dev, dtype=torch.float32)
        self.w = torch.empty((L, S), device=dev, dtype=torch.float32)
        self.prev_w = torch.zeros((L, S), device=dev, dtype=torch.float32)
        self.keep = torch.zeros((), device=dev, dtype=torch.float32)  # weight of prev_w: 0 on the first frame
        self.image = torch.empty((3, engine.resolution, engine.resolution), device=dev, dtype=torch.float32)
        self.frame = torch.empty((out_h, out_w, 3), device=dev, dtype=torch.uint8)
        self.smoothing = float(smoothing)
        self._first = True
        views = [cupy.from_dlpack(t) for t in (w_s, w_avg, A, bias, self.dp, m, self.w, self.image, self.frame)]
        self._inputs, (self._w_cp, self._image_cp, self._frame_cp) = views[:6], views[6:]
        self.out_h, self.out_w = out_h, out_w
        for _ in range(2):  # compiles the CuPy kernels and settles allocations before capture
            with torch.cuda.stream(stream):
                self._body()
        stream.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph, stream=stream):
            self._body()
        stream.synchronize()

    def _body(self) -> None:
        import cupy
        with cupy.cuda.ExternalStream(self.stream.cuda_stream):
            latent_blend(*self._inputs, psi=self.psi, impl="cupy", out=self._w_cp)
        if self.smoothing > 0:
            self.w.copy_(torch.lerp(self.w, self.prev_w, self.keep))
            self.prev_w.copy_(self.w)
        self.engine.static_in.copy_(self.w[None].to(self.engine.dtype))
        self.image.copy_(self.engine.fn(self.engine.static_in)[0])
        with cupy.cuda.ExternalStream(self.stream.cuda_stream):
            postprocess(self._image_cp, self.out_h, self.out_w, impl="cupy", out=self._frame_cp)

    def replay(self, dp_host: torch.Tensor, host_frame: torch.Tensor) -> None:
        """dp_host: pinned [P] float32; host_frame: pinned [H, W, 3] uint8, filled when this returns."""
        with torch.cuda.stream(self.stream):
            self.dp.copy_(dp_host, non_blocking=True)
            self.keep.fill_(0.0 if self._first else self.smoothing)
            self._first = False
            self.graph.replay()
            host_frame.copy_(self.frame, non_blocking=True)
        self.stream.synchronize()
