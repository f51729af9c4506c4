"""Devices and precisions: what `auto` means on this machine, and clear errors for what it lacks."""

from __future__ import annotations

import torch

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.float32}
# bf16 is mixed precision: weights and the image stay fp32, the convolutions run in bfloat16
# under autocast. On CPUs with AVX512-BF16 (or AMX) oneDNN runs them 2-3x faster than fp32;
# a whole-bf16 network is slower there (its element-wise ops are not vectorised as well).
AUTOCAST = {"bf16": torch.bfloat16}


class BackendUnavailable(RuntimeError):
    """The chosen backend or device cannot run here; the message says what to install or choose instead."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable(f"device {name!r} asked for, but this torch has no usable CUDA "
                                 f"(torch {torch.__version__}); use --device cpu or install a CUDA build of torch")
    return device


def resolve_dtype(precision: str) -> torch.dtype:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    return PRECISIONS[precision]


def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 convolutions natively (AVX512-BF16 or AMX), where mixed bf16
    beats fp32; elsewhere bf16 is emulated and slower. Linux reads /proc/cpuinfo; other systems
    answer False (fp32, always correct)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cupy_mismatch(torch_cuda: str | None, cupy_runtime: int | None) -> str | None:
    """Why CuPy cannot share tensors with this torch, or None. torch_cuda: torch.version.cuda
    ("12.4"); cupy_runtime: cupy.cuda.runtime.runtimeGetVersion() (12040)."""
    if not torch_cuda or not cupy_runtime:
        return None
    torch_major, cupy_major = int(str(torch_cuda).split(".")[0]), int(cupy_runtime) // 1000
    if torch_major == cupy_major:
        return None
    return (f"CuPy is built for CUDA {cupy_major} but torch for CUDA {torch_cuda}; they cannot share the GPU's "
            f"tensors. Install the matching one: pip uninstall -y cupy-cuda{cupy_major}x && "
            f"pip install 'live[gpu-cuda{torch_major}]'")


def kernels_on_cuda(device_index: int = 0) -> str:
    """The kernel implementation for CUDA tensors on device `device_index`: CuPy when it is installed,
    matches torch's CUDA and builds and launches both kernels there (kernels/cupy_probe.py), else the
    torch twins (same results, a few more launches), saying why once."""
    from kernels.dispatch import cupy_available
    if not cupy_available():
        return "torch"
    import cupy
    problem = cupy_mismatch(torch.version.cuda, cupy.cuda.runtime.runtimeGetVersion())
    if problem:
        _warn_once(problem + " Meanwhile the kernels run as torch ops.")
        return "torch"
    from kernels.cupy_probe import cupy_kernels_problem
    problem = cupy_kernels_problem(device_index)
    if problem:
        _warn_once(f"CuPy is installed but cannot build or run its kernels on cuda:{device_index} ({problem}); "
                   "the kernels run as torch ops instead (same frames). `live doctor` checks CuPy.")
        return "torch"
    return "cupy"


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        from loguru import logger
        logger.warning("{}", message)
