"""One frame's device work, on static buffers: delta_p -> W+ -> synthesis -> output frame.

    dp --latent_blend--> w --(latent smoothing)--> engine.static_in --forward_static--> image
       --postprocess--> frame [H, W, 3] uint8

The same code runs on every device; only the kernels' implementation and the stream differ:
on the CPU the Numba kernels on NumPy views of the buffers; on CUDA the CuPy kernels on DLPack
views (or their torch twins without CuPy), on this renderer's own stream and CuPy device; on
any other device (the tests use "meta" as a stand-in for CUDA) the torch twins. Every buffer is
allocated once, before the first frame, and written in place, so the body can be captured into
one CUDA graph (live/pipeline/frame_graph.py). Host transfers are only `set_input` (delta in)
and `download` (frame out).
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch

from kernels.latent_blend import latent_blend, layer_strength
from kernels.postprocess import postprocess
from live.engines.devices import kernels_on_cuda


def kernel_impl(device: torch.device) -> str:
    if device.type == "cpu":
        return "numba"
    return kernels_on_cuda(device.index or 0) if device.type == "cuda" else "torch"


class FrameBody:
    def __init__(self, engine, w_s: torch.Tensor, w_avg: torch.Tensor, directions, out_size: tuple[int, int],
                 truncation: float = 1.0, strength: float = 1.0, latent_smoothing: float = 0.0,
                 impl: str | None = None):
        if engine.batch != 1:
            raise ValueError(f"the live loop renders one frame at a time; the engine is built for batch {engine.batch}")
        self.engine, self.device = engine, torch.device(engine.device)
        self.impl = impl or kernel_impl(self.device)   # given: the renderer's fallback to the torch twins
        self.psi, self.smoothing = float(truncation), float(latent_smoothing)
        self.out_w, self.out_h = int(out_size[0]), int(out_size[1])
        L, S = w_s.shape
        if (L, S) != engine.input_shape[1:]:
            raise ValueError(f"w_s is {[L, S]}, the engine takes [{engine.n_latent}, {engine.style_dim}]")
        dev, f32 = self.device, torch.float32
        with self.context():
            # Inputs, copied once; then the buffers every frame reads and writes in place.
            self.w_s = w_s.detach().to(dev, f32).contiguous()
            self.w_avg = w_avg.detach().to(dev, f32).contiguous()
            self.A = directions.weight.to(dev, f32).contiguous()
            self.bias = directions.bias.to(dev, f32).contiguous()
            self.m = torch.from_numpy(layer_strength(L, directions.num_layers_shift, strength)).to(dev)
            self.dp = torch.zeros(self.A.shape[1], device=dev, dtype=f32)
            self.w = torch.empty((L, S), device=dev, dtype=f32)
            self.prev_w = torch.zeros((L, S), device=dev, dtype=f32)
            self.keep = torch.zeros((), device=dev, dtype=f32)   # weight of prev_w: 0 on the first frame
            self.image = torch.empty((3, engine.resolution, engine.resolution), device=dev, dtype=f32)
            self.frame = torch.empty((self.out_h, self.out_w, 3), device=dev, dtype=torch.uint8)
        self._first = True
        views = [self._view(t) for t in (self.w_s, self.w_avg, self.A, self.bias, self.dp, self.m,
                                         self.w, self.image, self.frame)]
        self._blend_in, (self._w_view, self._image_view, self._frame_view) = views[:6], views[6:]
        if self.device.type == "cuda":
            self.dp_host = torch.empty(self.A.shape[1], dtype=f32).pin_memory()
            self.frame_host = torch.empty((self.out_h, self.out_w, 3), dtype=torch.uint8).pin_memory()

    # -- device context ---------------------------------------------------------------------------
    @functools.cached_property
    def stream(self):
        return torch.cuda.Stream(device=self.device) if self.device.type == "cuda" else None

    @contextlib.contextmanager
    def context(self):
        """This renderer's CUDA device and stream, for torch and CuPy alike; nothing elsewhere."""
        if self.device.type != "cuda":
            yield
            return
        with torch.cuda.device(self.device), torch.cuda.stream(self.stream):
            if self.impl == "cupy":
                import cupy
                with cupy.cuda.Device(self.device.index or 0), cupy.cuda.ExternalStream(self.stream.cuda_stream):
                    yield
            else:
                yield

    def _view(self, t: torch.Tensor):
        """What the kernels take: NumPy for Numba (same memory), CuPy through DLPack, else the tensor."""
        if self.impl == "numba":
            return t.numpy()
        if self.impl == "cupy":
            import cupy
            with cupy.cuda.Device(self.device.index or 0):
                return cupy.from_dlpack(t)
        return t

    # -- one frame ---------------------------------------------------------------------------------
    def set_input(self, delta: np.ndarray) -> None:
        """The frame's normalised delta_p [P] (host) into the device buffer; the smoothing weight."""
        delta = np.asarray(delta, np.float32)
        if delta.shape != tuple(self.dp.shape):
            raise ValueError(f"delta_p must be [{self.dp.shape[0]}], got {list(delta.shape)}")
        with self.context():
            if self.device.type == "cuda":
                self.dp_host.copy_(torch.from_numpy(delta))
                self.dp.copy_(self.dp_host, non_blocking=True)
            else:
                self.dp.copy_(torch.from_numpy(delta))
            self.keep.fill_(0.0 if self._first else self.smoothing)
        self._first = False

    def body(self) -> None:
        """The device work of one frame on the static buffers (what a CUDA graph captures)."""
        with self.context():
            latent_blend(*self._blend_in, psi=self.psi, impl=self.impl, out=self._w_view)
            if self.smoothing > 0:
                self.w.copy_(torch.lerp(self.w, self.prev_w, self.keep))
                self.prev_w.copy_(self.w)
            self.engine.static_in.copy_(self.w[None])
            self.image.copy_(self.engine.forward_static()[0])
            postprocess(self._image_view, self.out_h, self.out_w, impl=self.impl, out=self._frame_view)

    def download(self) -> np.ndarray:
        """The finished frame on the host (HxWx3 uint8, a new array)."""
        if self.device.type == "cuda":
            with self.context():
                self.frame_host.copy_(self.frame, non_blocking=True)
            self.stream.synchronize()
            return self.frame_host.numpy().copy()
        return self.frame.numpy().copy()

    def reset(self) -> None:
        """Forget the previous frame: the next one is not smoothed toward it (after a warm-up frame)."""
        self._first = True
