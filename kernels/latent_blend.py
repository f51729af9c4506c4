"""The per-frame latent: w = w_avg + psi * (w_s + m * (A dp + b) - w_avg), in one pass.

    w_s      [L, S]       the avatar's code (W+)
    A, b     [Ls*S, P], [Ls*S]  the direction matrix (models.direction_matrix layout: row l*S+s)
    dp       [P]          normalised parameter change
    m        [L]          per-layer strength (0 beyond the Ls shifted layers)
    psi                   truncation toward w_avg [S] (1 = none)

The matrix-vector product is inside the kernel: each output element computes its own row of
A dp, so the whole blend is one launch with no intermediate buffer. `ref` is NumPy (the
definition), `numba` the CPU twin, `cupy` a CUDA kernel on the current stream (CUDA torch
tensors are taken without copies through DLPack), `torch` the same arithmetic in torch ops on
the tensors' own device (GPUs without CuPy; and the device-placement checks of the tests).
"""

from __future__ import annotations

import functools

import numpy as np

from kernels.dispatch import check_out, resolve_impl, write_into

CUDA_SOURCE = r"""
extern "C" __global__ void live_latent_blend(
    const float* __restrict__ w_s, const float* __restrict__ w_avg, const float* __restrict__ A,
    const float* __restrict__ bias, const float* __restrict__ dp, const float* __restrict__ strength,
    const float psi, const int L, const int S, const int L_shift, const int P, float* __restrict__ out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= L * S) return;
  const int l = i / S;
  const int s = i - l * S;
  float shift = 0.0f;
  if (l < L_shift) {
    const float* row = A + (size_t)i * P;   // row l*S + s of A
    float acc = bias[i];
    for (int p = 0; p < P; ++p) acc += row[p] * dp[p];
    shift = strength[l] * acc;
  }
  out[i] = w_avg[s] + psi * (w_s[i] + shift - w_avg[s]);
}
"""


def _check(w_s, w_avg, A, bias, dp, strength):
    L, S = w_s.shape
    rows, P = A.shape
    if rows % S or rows // S > L:
        raise ValueError(f"A must be [Ls*{S}, P] with Ls <= {L}, got {list(A.shape)}")
    if tuple(w_avg.shape) != (S,) or tuple(bias.shape) != (rows,) or tuple(dp.shape) != (P,):
        raise ValueError(f"shapes: w_avg [{S}], bias [{rows}], dp [{P}] expected; got {list(w_avg.shape)}, "
                         f"{list(bias.shape)}, {list(dp.shape)}")
    if tuple(strength.shape) != (L,):
        raise ValueError(f"strength must be [{L}] (one per W+ layer), got {list(strength.shape)}")
    return L, S, rows // S, P


def latent_blend_ref(w_s, w_avg, A, bias, dp, strength, psi: float) -> np.ndarray:
    L, S, Ls, P = _check(w_s, w_avg, A, bias, dp, strength)
    shift = np.zeros((L, S), dtype=np.float64)
    shift[:Ls] = (A.astype(np.float64) @ dp.astype(np.float64) + bias).reshape(Ls, S)
    shift *= strength[:, None]
    return (w_avg + psi * (w_s + shift - w_avg)).astype(np.float32)


@functools.cache
def _numba_kernel():
    import numba

    # nogil: the loop's other threads (and `live serve`'s event loop) run while this one draws
    @numba.njit(cache=True, nogil=True)
    def blend(w_s, w_avg, A, bias, dp, strength, psi, Ls, out):
        L, S = w_s.shape
        P = dp.shape[0]
        for layer in range(L):
            for s in range(S):
                shift = 0.0
                if layer < Ls:
                    i = layer * S + s
                    acc = bias[i]
                    for p in range(P):
                        acc += A[i, p] * dp[p]
                    shift = strength[layer] * acc
                out[layer, s] = w_avg[s] + psi * (w_s[layer, s] + shift - w_avg[s])
    return blend


@functools.cache
def _cupy_kernel():
    import cupy
    return cupy.RawKernel(CUDA_SOURCE, "live_latent_blend")


def latent_blend_torch(w_s, w_avg, A, bias, dp, strength, psi: float, out=None):
    """The torch twin: tensors in (one device, float32), [L, S] out; writes `out` when given."""
    L, S, Ls, P = _check(w_s, w_avg, A, bias, dp, strength)
    import torch
    out = torch.empty_like(w_s) if out is None else out
    torch.lerp(w_avg.expand_as(w_s), w_s, psi, out=out)               # w_avg + psi (w_s - w_avg)
    out[:Ls].add_(torch.addmv(bias, A, dp).view(Ls, S) * (strength[:Ls, None] * psi))
    return out


def latent_blend(w_s, w_avg, A, bias, dp, strength, psi: float = 1.0, impl: str = "auto", out=None):
    """The blended W+ code [L, S] float32 (NumPy; CuPy or torch for GPU inputs). See the module doc."""
    impl = resolve_impl(impl, w_s)
    if impl == "torch":
        return latent_blend_torch(w_s, w_avg, A, bias, dp, strength, psi, out)
    if impl == "cupy":
        import cupy
        arrays = [cupy.ascontiguousarray(cupy.asarray(x, dtype=cupy.float32)) for x in (w_s, w_avg, A, bias, dp, strength)]
        L, S, Ls, P = _check(*arrays)
        check_out(out, (L, S), cupy.float32)
        out = cupy.empty((L, S), dtype=cupy.float32) if out is None else out
        threads = 256
        _cupy_kernel()(((L * S + threads - 1) // threads,), (threads,),
                       (*arrays, np.float32(psi), np.int32(L), np.int32(S), np.int32(Ls), np.int32(P), out))
        return out
    arrays = [np.ascontiguousarray(np.asarray(x, dtype=np.float32)) for x in (w_s, w_avg, A, bias, dp, strength)]
    if impl == "ref":   # also where Numba is missing: the caller's buffer must still hold the result
        return write_into(latent_blend_ref(*arrays, psi), out)
    L, S, Ls, P = _check(*arrays)
    check_out(out, (L, S), np.float32)
    out = np.empty((L, S), dtype=np.float32) if out is None else out
    _numba_kernel()(*arrays, np.float32(psi), Ls, out)
    return out


def layer_strength(n_latent: int, n_shift: int, strength: float = 1.0) -> np.ndarray:
    """m: `strength` on the shifted layers, 0 beyond them."""
    m = np.zeros(n_latent, dtype=np.float32)
    m[:n_shift] = strength
    return m
