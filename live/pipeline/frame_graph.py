"""The whole device part of one frame as one CUDA graph: latent blend -> synthesis -> post-process.

Without it a frame is several launches from Python (the blend kernel, the engine's synthesis,
the post-process kernel, the small torch ops between them); captured together, a frame is one
`replay()`: its launch cost no longer grows with the number of kernels, and the CPU is free to
track the next frame as soon as the replay is queued.

What makes the body capturable is FrameBody's design: every buffer is allocated before capture
and written in place, the kernels take `out=`, and nothing in the body synchronises. Per frame
only the contents of `dp` and the smoothing weight change; `set_input` writes them before the
replay. The graph is the only capture of the synthesis: the engine, whose `forward_static` the
body calls, captures nothing of its own unless it is run on its own.
"""

from __future__ import annotations

import torch

from live.pipeline.frame_body import FrameBody


class FrameGraph:
    def __init__(self, body: FrameBody, warmup: int = 2):
        if body.device.type != "cuda":
            raise ValueError("a CUDA graph needs a CUDA device")
        self.body = body
        for _ in range(warmup):  # compiles the kernels, settles allocations before capture
            body.body()
        body.stream.synchronize()
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(body.device), torch.cuda.graph(self.graph, stream=body.stream):
            body.body()
        body.stream.synchronize()
        body.reset()

    def replay(self) -> None:
        with torch.cuda.device(self.body.device), torch.cuda.stream(self.body.stream):
            self.graph.replay()
