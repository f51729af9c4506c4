"""The One-Euro filter (Casiez, Roussel and Vogel, CHI 2012) over a vector of parameters.

Per parameter i, at each new sample x with time step dt > 0:
    alpha(fc)  = 1 / (1 + 1 / (2 pi fc dt))
    dx_hat     = alpha(d_cutoff) * (x - x_hat_prev) / dt + (1 - alpha(d_cutoff)) * dx_hat_prev
    fc         = min_cutoff_i + beta_i * |dx_hat|
    x_hat      = alpha(fc) * x + (1 - alpha(fc)) * x_hat_prev
The first sample passes through (x_hat = x, dx_hat = 0). Slow motion gets a low cutoff (little
jitter), fast motion a high one (little lag).

One signature, three implementations: `impl="ref"` (NumPy, the definition above), `"numba"`
(CPU) and `"cupy"` (GPU, an elementwise kernel on the caller's stream). State is updated in place.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from kernels.dispatch import resolve_impl

TWO_PI = 2.0 * math.pi


@dataclass
class OneEuroState:
    """Filter memory for D parameters (NumPy or CuPy arrays, float64 or float32)."""

    x_hat: object
    dx_hat: object
    initialized: bool = False

    @classmethod
    def zeros(cls, dim: int, xp=np, dtype=np.float64) -> "OneEuroState":
        return cls(x_hat=xp.zeros(dim, dtype=dtype), dx_hat=xp.zeros(dim, dtype=dtype))


def _step_ref(x, state: OneEuroState, dt: float, min_cutoff, beta, d_cutoff):
    a_d = 1.0 / (1.0 + 1.0 / (TWO_PI * d_cutoff * dt))
    dx = (x - state.x_hat) / dt
    dx_hat = a_d * dx + (1.0 - a_d) * state.dx_hat
    cutoff = min_cutoff + beta * np.abs(dx_hat)
    a = 1.0 / (1.0 + 1.0 / (TWO_PI * cutoff * dt))
    x_hat = a * x + (1.0 - a) * state.x_hat
    state.x_hat[...] = x_hat
    state.dx_hat[...] = dx_hat
    return x_hat


@functools.cache
def _numba_step():
    import numba

    @numba.njit(cache=True, fastmath=False)
    def step(x, x_hat, dx_hat, dt, min_cutoff, beta, d_cutoff, out):
        a_d = 1.0 / (1.0 + 1.0 / (TWO_PI * d_cutoff * dt))
        for i in range(x.shape[0]):
            dx = (x[i] - x_hat[i]) / dt
            edx = a_d * dx + (1.0 - a_d) * dx_hat[i]
            cutoff = min_cutoff[i] + beta[i] * abs(edx)
            a = 1.0 / (1.0 + 1.0 / (TWO_PI * cutoff * dt))
            out[i] = a * x[i] + (1.0 - a) * x_hat[i]
            x_hat[i] = out[i]
            dx_hat[i] = edx
    return step


CUPY_IN_PARAMS = "T x, float64 dt, T min_cutoff, T beta, float64 d_cutoff"
CUPY_OUT_PARAMS = "T x_hat, T dx_hat, T out"
# Per element; x_hat and dx_hat are read and written in place (the filter state).
CUPY_BODY = """
const double two_pi = 6.283185307179586;
double a_d = 1.0 / (1.0 + 1.0 / (two_pi * d_cutoff * dt));
double dx = ((double)x - (double)x_hat) / dt;
double edx = a_d * dx + (1.0 - a_d) * (double)dx_hat;
double cutoff = (double)min_cutoff + (double)beta * fabs(edx);
double a = 1.0 / (1.0 + 1.0 / (two_pi * cutoff * dt));
double y = a * (double)x + (1.0 - a) * (double)x_hat;
out = (T)y; x_hat = (T)y; dx_hat = (T)edx;
"""


@functools.cache
def _cupy_kernel():
    import cupy
    return cupy.ElementwiseKernel(CUPY_IN_PARAMS, CUPY_OUT_PARAMS, CUPY_BODY, "live_one_euro_step")


def one_euro_step(x, state: OneEuroState, dt: float, min_cutoff, beta, d_cutoff: float = 1.0,
                  impl: str = "auto"):
    """Filter one sample x [D]; updates `state`; returns x_hat [D] (a new array)."""
    if dt <= 0 or not math.isfinite(dt):
        raise ValueError(f"dt must be a positive, finite number of seconds, got {dt}")
    impl = resolve_impl(impl, x)
    if impl == "cupy":
        import cupy
        xp = cupy
    else:
        xp = np
    x = xp.asarray(x, dtype=state.x_hat.dtype)
    if x.shape != state.x_hat.shape:
        raise ValueError(f"x must be [{state.x_hat.shape[0]}] like the filter state, got {list(x.shape)}")
    min_cutoff = xp.broadcast_to(xp.asarray(min_cutoff, dtype=x.dtype), x.shape)
    beta = xp.broadcast_to(xp.asarray(beta, dtype=x.dtype), x.shape)
    if not state.initialized:
        state.x_hat[...] = x
        state.dx_hat[...] = 0
        state.initialized = True
        return x.copy()
    if impl == "ref":
        return _step_ref(x, state, dt, min_cutoff, beta, d_cutoff)
    if impl == "numba":
        out = np.empty_like(x)
        _numba_step()(np.ascontiguousarray(x), state.x_hat, state.dx_hat, float(dt),
                      np.ascontiguousarray(min_cutoff), np.ascontiguousarray(beta), float(d_cutoff), out)
        return out
    out = xp.empty_like(x)
    _cupy_kernel()(x, float(dt), xp.ascontiguousarray(min_cutoff), xp.ascontiguousarray(beta),
                   float(d_cutoff), state.x_hat, state.dx_hat, out)
    return out


def one_euro_sequence(values: np.ndarray, times: np.ndarray, min_cutoff, beta, d_cutoff: float = 1.0,
                      impl: str = "auto") -> np.ndarray:
    """Filter a whole track [T, D] sampled at `times` [T] (seconds); NaN rows (no face) pass through
    as NaN and do not disturb the filter."""
    values = np.asarray(values, dtype=np.float64)
    out = np.full_like(values, np.nan)
    state = OneEuroState.zeros(values.shape[1])
    last_t = None
    for k in range(values.shape[0]):
        if not np.all(np.isfinite(values[k])):
            continue
        dt = 1.0 if last_t is None else float(times[k] - last_t)
        out[k] = one_euro_step(values[k], state, dt, min_cutoff, beta, d_cutoff, impl=impl)
        last_t = times[k]
    return out
