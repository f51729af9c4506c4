"""Generator output to a sink's frame, in one pass: NCHW float in about [-1, 1] -> HxWx3 uint8 RGB.

The image is resized (bilinear, pixel centres aligned as torch's align_corners=False) to fit the
output size and letterboxed with a fill colour where the aspect ratios differ; values are
clamped to [-1, 1], mapped to [0, 255] and rounded half to even (as torch.round). NaN pixels read as -1 (black),
+-inf as +-FLT_MAX (so they clamp like any large value).
`ref` is NumPy, `numba` the CPU twin, `cupy` one CUDA thread per output pixel, writing into
device memory (the caller's buffer with `out=`); the render stage copies that frame to pinned
host memory. `torch` is the same arithmetic in torch ops on the image's own device (GPUs without
CuPy, and the tests' device-placement checks); it allocates nothing on the host, so it can be
captured into a CUDA graph.
"""

from __future__ import annotations

import functools

import numpy as np

from kernels.dispatch import check_out, resolve_impl, write_into

CUDA_SOURCE = r"""
// NaN reads as black; +-inf as the largest finite float, so it clamps to white/black like any large value
// (an inf would turn its zero-weight neighbours into NaN: inf * 0)
__device__ __forceinline__ float live_px(const float v) {
  return isnan(v) ? -1.0f : fminf(fmaxf(v, -3.402823466e+38f), 3.402823466e+38f);
}

extern "C" __global__ void live_postprocess(
    const float* __restrict__ img, const int H, const int W, const int out_h, const int out_w,
    const int x0, const int y0, const int cw, const int ch, const unsigned char fill_r,
    const unsigned char fill_g, const unsigned char fill_b, unsigned char* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= out_h * out_w) return;
  const int y = i / out_w;
  const int x = i - y * out_w;
  unsigned char* px = out + (size_t)i * 3;
  if (x < x0 || x >= x0 + cw || y < y0 || y >= y0 + ch) {
    px[0] = fill_r; px[1] = fill_g; px[2] = fill_b;
    return;
  }
  float u = ((float)(x - x0) + 0.5f) * ((float)W / (float)cw) - 0.5f;
  float v = ((float)(y - y0) + 0.5f) * ((float)H / (float)ch) - 0.5f;
  u = fminf(fmaxf(u, 0.0f), (float)(W - 1));
  v = fminf(fmaxf(v, 0.0f), (float)(H - 1));
  const int u0 = (int)floorf(u), v0 = (int)floorf(v);
  const int u1 = min(u0 + 1, W - 1), v1 = min(v0 + 1, H - 1);
  const float fu = u - (float)u0, fv = v - (float)v0;
  for (int c = 0; c < 3; ++c) {
    const float* p = img + (size_t)c * H * W;
    float a = live_px(p[v0 * W + u0]) * (1.0f - fu) + live_px(p[v0 * W + u1]) * fu;
    float b = live_px(p[v1 * W + u0]) * (1.0f - fu) + live_px(p[v1 * W + u1]) * fu;
    float val = a * (1.0f - fv) + b * fv;
    val = fminf(fmaxf(val, -1.0f), 1.0f);
    px[c] = (unsigned char)rintf((val + 1.0f) * 127.5f);
  }
}
"""


def content_rect(H: int, W: int, out_h: int, out_w: int) -> tuple[int, int, int, int]:
    """(x0, y0, width, height) of the image inside the output, aspect ratio kept, centred."""
    scale = min(out_w / W, out_h / H)
    cw, ch = max(1, round(W * scale)), max(1, round(H * scale))
    return (out_w - cw) // 2, (out_h - ch) // 2, cw, ch


def _coords(n_out: int, n_in: int, start: int, length: int):
    t = (np.arange(n_out, dtype=np.float32) - np.float32(start) + np.float32(0.5)) \
        * np.float32(n_in / length) - np.float32(0.5)
    t = np.clip(t, 0, n_in - 1).astype(np.float32)
    i0 = np.floor(t).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, (t - i0).astype(np.float32)


def postprocess_ref(img: np.ndarray, out_h: int, out_w: int, fill=(0, 0, 0)) -> np.ndarray:
    img = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=-1.0)  # NaN reads as black
    _, H, W = img.shape
    x0, y0, cw, ch = content_rect(H, W, out_h, out_w)
    out = np.empty((out_h, out_w, 3), np.uint8)
    out[:] = np.asarray(fill, np.uint8)
    u0, u1, fu = _coords(out_w, W, x0, cw)
    v0, v1, fv = _coords(out_h, H, y0, ch)
    xs, ys = slice(x0, x0 + cw), slice(y0, y0 + ch)
    u0, u1, fu = u0[xs], u1[xs], fu[xs]
    v0, v1, fv = v0[ys][:, None], v1[ys][:, None], fv[ys][:, None]
    for c in range(3):
        p = img[c]
        a = p[v0, u0] * (1 - fu) + p[v0, u1] * fu
        b = p[v1, u0] * (1 - fu) + p[v1, u1] * fu
        val = a * (1 - fv) + b * fv
        out[ys, xs, c] = np.rint((np.clip(val, -1, 1) + 1) * np.float32(127.5)).astype(np.uint8)
    return out


@functools.cache
def _numba_kernel():
    import numba

    # nogil: the loop's other threads (and `live serve`'s event loop) run while this one draws
    @numba.njit(cache=True, nogil=True)
    def post(img, out_h, out_w, x0, y0, cw, ch, fill, out):
        # (an inner function: one of the enclosing scope would put a per-process id in Numba's cache key, and
        # every process would compile the kernel again and add a cache file)
        def _px(v):
            """NaN reads as black; +-inf as +-FLT_MAX (as in the CUDA source and np.nan_to_num)."""
            if np.isnan(v):
                return np.float32(-1.0)
            return min(max(v, np.float32(-3.402823466e+38)), np.float32(3.402823466e+38))

        H, W = img.shape[1], img.shape[2]
        sx = np.float32(W / cw)
        sy = np.float32(H / ch)
        for y in range(out_h):
            for x in range(out_w):
                if x < x0 or x >= x0 + cw or y < y0 or y >= y0 + ch:
                    out[y, x, 0], out[y, x, 1], out[y, x, 2] = fill[0], fill[1], fill[2]
                    continue
                u = (np.float32(x - x0) + np.float32(0.5)) * sx - np.float32(0.5)
                v = (np.float32(y - y0) + np.float32(0.5)) * sy - np.float32(0.5)
                u = min(max(u, np.float32(0.0)), np.float32(W - 1))
                v = min(max(v, np.float32(0.0)), np.float32(H - 1))
                u0, v0 = int(np.floor(u)), int(np.floor(v))
                u1, v1 = min(u0 + 1, W - 1), min(v0 + 1, H - 1)
                fu, fv = u - np.float32(u0), v - np.float32(v0)
                for c in range(3):
                    p00, p01, p10, p11 = img[c, v0, u0], img[c, v0, u1], img[c, v1, u0], img[c, v1, u1]
                    p00, p01, p10, p11 = _px(p00), _px(p01), _px(p10), _px(p11)
                    a = p00 * (np.float32(1) - fu) + p01 * fu
                    b = p10 * (np.float32(1) - fu) + p11 * fu
                    val = a * (np.float32(1) - fv) + b * fv
                    val = min(max(val, np.float32(-1.0)), np.float32(1.0))
                    out[y, x, c] = np.uint8(np.rint((val + np.float32(1.0)) * np.float32(127.5)))
    return post


@functools.cache
def _cupy_kernel():
    import cupy
    return cupy.RawKernel(CUDA_SOURCE, "live_postprocess")


def _coords_torch(n_out: int, n_in: int, start: int, length: int, device):
    import torch
    # the scale as a float32 value, as the other implementations use it; a Python scalar, so no
    # host tensor enters the (capturable) device work
    t = (torch.arange(n_out, device=device, dtype=torch.float32) - float(start) + 0.5) \
        * float(np.float32(n_in / length)) - 0.5
    t = t.clamp(0, n_in - 1)
    i0 = t.floor().long()
    return i0, (i0 + 1).clamp(max=n_in - 1), t - i0


def postprocess_torch(img, out_h: int, out_w: int, fill=(0, 0, 0), out=None):
    """The torch twin: [3, H, W] float tensor -> [out_h, out_w, 3] uint8 on the same device."""
    import torch
    img = torch.nan_to_num(img.float(), nan=-1.0)  # NaN reads as black
    _, H, W = img.shape
    x0, y0, cw, ch = content_rect(H, W, out_h, out_w)
    u0, u1, fu = _coords_torch(out_w, W, x0, cw, img.device)
    v0, v1, fv = _coords_torch(out_h, H, y0, ch, img.device)
    u0, u1, fu = u0[x0:x0 + cw], u1[x0:x0 + cw], fu[x0:x0 + cw]
    v0, v1, fv = v0[y0:y0 + ch, None], v1[y0:y0 + ch, None], fv[y0:y0 + ch, None]
    top, bottom = img[:, v0[:, 0]], img[:, v1[:, 0]]                     # [3, ch, W]
    a = top[:, :, u0] * (1 - fu) + top[:, :, u1] * fu
    b = bottom[:, :, u0] * (1 - fu) + bottom[:, :, u1] * fu
    val = ((a * (1 - fv) + b * fv).clamp(-1, 1) + 1) * 127.5
    out = torch.empty((out_h, out_w, 3), dtype=torch.uint8, device=img.device) if out is None else out
    for c in range(3):
        out[:, :, c].fill_(int(fill[c]))
    out[y0:y0 + ch, x0:x0 + cw] = val.round().to(torch.uint8).permute(1, 2, 0)
    return out


def postprocess(img, out_h: int, out_w: int, fill=(0, 0, 0), impl: str = "auto", out=None):
    """[3, H, W] (or [1, 3, H, W]) float -> [out_h, out_w, 3] uint8. See the module doc."""
    if img.ndim == 4:
        if img.shape[0] != 1:
            raise ValueError("postprocess takes one image; loop over a batch")
        img = img[0]
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"image must be [3, H, W], got {list(img.shape)}")
    impl = resolve_impl(impl, img)
    if impl == "torch":
        return postprocess_torch(img, out_h, out_w, fill, out)
    H, W = int(img.shape[1]), int(img.shape[2])
    x0, y0, cw, ch = content_rect(H, W, out_h, out_w)
    if impl == "cupy":
        import cupy
        src = cupy.ascontiguousarray(cupy.asarray(img, dtype=cupy.float32))
        check_out(out, (out_h, out_w, 3), cupy.uint8)
        out = cupy.empty((out_h, out_w, 3), cupy.uint8) if out is None else out
        threads = 256
        _cupy_kernel()(((out_h * out_w + threads - 1) // threads,), (threads,),
                       (src, np.int32(H), np.int32(W), np.int32(out_h), np.int32(out_w), np.int32(x0), np.int32(y0),
                        np.int32(cw), np.int32(ch), np.uint8(fill[0]), np.uint8(fill[1]), np.uint8(fill[2]), out))
        return out
    src = np.ascontiguousarray(np.asarray(img, dtype=np.float32))
    if impl == "ref":   # also where Numba is missing: the caller's buffer must still hold the frame
        return write_into(postprocess_ref(src, out_h, out_w, fill), out)
    check_out(out, (out_h, out_w, 3), np.uint8)
    out = np.empty((out_h, out_w, 3), np.uint8) if out is None else out
    _numba_kernel()(src, out_h, out_w, x0, y0, cw, ch, np.asarray(fill, np.uint8), out)
    return out
