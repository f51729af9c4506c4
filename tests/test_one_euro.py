"""One-Euro filter: the Numba and CuPy kernels equal the NumPy reference; the filter behaves."""

import shutil
import subprocess

import numpy as np
import pytest

from kernels.one_euro import OneEuroState, one_euro_sequence, one_euro_step
from tests.conftest import needs_cupy

D = 15


def _noisy_track(seed=0, T=400):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(1 / 40, 1 / 20, size=T))  # irregular frame times
    clean = np.sin(t[:, None] * rng.uniform(0.5, 4, D)) * rng.uniform(1, 20, D)
    return t, clean + rng.normal(0, 0.5, (T, D)), clean


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_equals_reference(dtype):
    t, x, _ = _noisy_track()
    min_cutoff = np.linspace(0.5, 3, D)
    beta = np.linspace(0.0, 0.5, D)
    outs = {}
    for impl in ("ref", "numba"):
        state = OneEuroState.zeros(D, dtype=dtype)
        rows, last = [], None
        for k in range(len(t)):
            dt = 1 / 30 if last is None else t[k] - last
            rows.append(one_euro_step(x[k].astype(dtype), state, dt, min_cutoff, beta, 1.0, impl=impl))
            last = t[k]
        outs[impl] = np.stack(rows)
    tol = 1e-6 if dtype == np.float64 else 1e-4 * np.abs(outs["ref"]).max()
    assert np.abs(outs["numba"] - outs["ref"]).max() <= tol


@needs_cupy
def test_cupy_equals_reference():
    import cupy
    t, x, _ = _noisy_track(1)
    min_cutoff, beta = np.full(D, 1.0), np.full(D, 0.2)
    ref_state = OneEuroState.zeros(D)
    gpu_state = OneEuroState.zeros(D, xp=cupy)
    for k in range(len(t)):
        dt = 1 / 30 if k == 0 else t[k] - t[k - 1]
        a = one_euro_step(x[k], ref_state, dt, min_cutoff, beta, impl="ref")
        b = one_euro_step(cupy.asarray(x[k]), gpu_state, dt, cupy.asarray(min_cutoff), cupy.asarray(beta), impl="cupy")
        assert np.abs(cupy.asnumpy(b) - a).max() <= 1e-6


def test_first_sample_passes_and_constant_stays():
    state = OneEuroState.zeros(3)
    x = np.array([1.0, -2.0, 3.0])
    assert np.array_equal(one_euro_step(x, state, 1 / 30, 1.0, 0.0, impl="ref"), x)
    for _ in range(10):
        y = one_euro_step(x, state, 1 / 30, 1.0, 0.0, impl="numba")
    assert np.allclose(y, x)


def test_still_jitter_drops_and_beta_cuts_lag():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30
    noise = rng.normal(0, 0.5, (300, 1))
    ramp = (30 * t)[:, None]  # fast motion: 30 units per second
    still = one_euro_sequence(noise, t, min_cutoff=1.0, beta=0.0)
    def jitter(a):
        return np.abs(np.diff(a[30:], axis=0)).mean()
    assert jitter(still) < jitter(noise) / 4  # measured 0.13 of the raw
    lag_fixed = (ramp - one_euro_sequence(ramp + noise, t, 1.0, beta=0.0))[60:].mean()
    lag_adaptive = (ramp - one_euro_sequence(ramp + noise, t, 1.0, beta=0.5))[60:].mean()
    assert lag_fixed > 4.0  # a fixed 1 Hz low-pass trails a 30/s ramp by ~ 30 / (2 pi) units
    assert lag_adaptive < lag_fixed / 10  # the speed-dependent cutoff removes most of it


def test_nan_rows_pass_through_without_poisoning_the_filter():
    t = np.arange(10) / 30
    x = np.ones((10, 2))
    x[4] = np.nan
    y = one_euro_sequence(x, t, 1.0, 0.0)
    assert np.isnan(y[4]).all() and np.isfinite(np.delete(y, 4, axis=0)).all()


def test_bad_dt_and_shape():
    state = OneEuroState.zeros(2)
    with pytest.raises(ValueError, match="dt must be"):
        one_euro_step(np.zeros(2), state, 0.0, 1.0, 0.0)
    with pytest.raises(ValueError, match=r"x must be \[2\]"):
        one_euro_step(np.zeros(3), state, 0.1, 1.0, 0.0)
    with pytest.raises(ValueError, match="kernel impl"):
        one_euro_step(np.zeros(2), state, 0.1, 1.0, 0.0, impl="fortran")


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc to compile CUDA source")
@pytest.mark.parametrize("ctype", ["float", "double"])
def test_cupy_kernel_source_compiles(tmp_path, ctype):
    """Without a GPU the CuPy kernel cannot run; its CUDA body can still be compiled, wrapped the
    way CuPy's ElementwiseKernel wraps it (one element per thread, parameters by name)."""
    from kernels.one_euro import CUPY_BODY
    src = tmp_path / "one_euro.cu"
    src.write_text(f"""
typedef {ctype} T;
extern "C" __global__ void step(const T* x_, double dt, const T* min_cutoff_, const T* beta_, double d_cutoff,
                                T* x_hat_, T* dx_hat_, T* out_, int n) {{
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const T x = x_[i]; const T min_cutoff = min_cutoff_[i]; const T beta = beta_[i];
  T& x_hat = x_hat_[i]; T& dx_hat = dx_hat_[i]; T& out = out_[i];
  {CUPY_BODY}
}}
""")
    result = subprocess.run(["nvcc", "-c", "-o", str(tmp_path / "o.o"), str(src)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
