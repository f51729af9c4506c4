"""Choosing a kernel implementation: `ref` (NumPy), `numba` (CPU), `cupy` (CUDA), `torch`, or `auto`.

`auto` follows the data: CuPy arrays go to the CuPy kernel; torch tensors on a GPU go to CuPy when
it is installed and to the torch twin (the same arithmetic in torch ops, any device) when it is
not; everything else to Numba. A fast path that cannot be built falls back to the reference with
one warning.
"""

from __future__ import annotations

import functools

from loguru import logger

IMPLS = ("auto", "ref", "numba", "cupy", "torch")


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
        return True
    except Exception as e:  # a broken llvmlite raises more than ImportError
        logger.warning("numba unavailable ({}); CPU kernels use the NumPy reference", e)
        return False


@functools.cache
def cupy_available() -> bool:
    try:
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def is_torch_tensor(x) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


def is_gpu_array(x) -> bool:
    if type(x).__module__.startswith("cupy"):
        return True
    return hasattr(x, "is_cuda") and bool(x.is_cuda)


def resolve_impl(impl: str, sample) -> str:
    if impl not in IMPLS:
        raise ValueError(f"kernel impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        if type(sample).__module__.startswith("cupy"):
            impl = "cupy"
        elif is_torch_tensor(sample) and sample.device.type != "cpu":
            impl = "cupy" if sample.device.type == "cuda" and cupy_available() else "torch"
        else:
            impl = "numba"
    if impl == "cupy" and not cupy_available():
        raise RuntimeError("the cupy kernel needs CuPy and a CUDA GPU: pip install 'live[gpu]'")
    if impl == "numba" and not numba_available():
        return "ref"
    return impl


def check_out(out, shape: tuple[int, ...], dtype) -> None:
    """A caller's `out=` buffer must be exactly what the kernel writes: the compiled kernels index it
    without bounds checks, so a wrong size would write past its end."""
    if out is not None and (tuple(out.shape) != tuple(shape) or out.dtype != dtype):
        raise ValueError(f"out must be {list(shape)} {dtype}, got {list(out.shape)} {out.dtype}")


def write_into(result, out):
    """`result` written into the caller's buffer when one is given, and that buffer returned: every
    implementation honours `out=` (the reference too, which stands in when Numba is missing; the
    frame body renders from its own buffers and never looks at the return value)."""
    if out is None:
        return result
    check_out(out, result.shape, result.dtype)
    out[...] = result
    return out
