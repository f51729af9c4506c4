"""Can CuPy build and launch our kernels on this GPU? Asked once per device before CuPy is chosen.

`import cupy` succeeding says little: CuPy compiles its RawKernels at the first launch with NVRTC,
which may be missing or built for another CUDA than the driver's (a cupy-cuda13x wheel beside a
CUDA 12 driver, a container without libnvrtc). Without this probe such a machine would fail at the
first frame, inside the frame graph's capture. So both kernels are compiled, launched on a tiny input
and compared with the NumPy reference; any failure is the reason to use the torch twins instead.
"""

from __future__ import annotations

import functools

import numpy as np


@functools.cache
def cupy_kernels_problem(device_index: int = 0) -> str | None:
    """None when the latent-blend and post-process kernels build, launch and agree with the reference
    on CUDA device `device_index`; else what went wrong, in one line."""
    from kernels.latent_blend import latent_blend, layer_strength
    from kernels.postprocess import postprocess
    rng = np.random.default_rng(0)
    L, S, Ls, P = 3, 8, 2, 5
    blend_in = [rng.normal(size=(L, S)), rng.normal(size=S), rng.normal(size=(Ls * S, P)), rng.normal(size=Ls * S),
                rng.normal(size=P), layer_strength(L, Ls)]
    blend_in = [np.asarray(a, np.float32) for a in blend_in]
    image = rng.uniform(-1, 1, size=(3, 6, 6)).astype(np.float32)
    try:
        import cupy
        with cupy.cuda.Device(device_index):
            w = latent_blend(*[cupy.asarray(a) for a in blend_in], psi=0.9, impl="cupy")
            frame = postprocess(cupy.asarray(image), 5, 7, impl="cupy")
            cupy.cuda.get_current_stream().synchronize()
            w, frame = cupy.asnumpy(w), cupy.asnumpy(frame)
    except Exception as e:  # NVRTC missing or mismatched, no kernel image for this GPU, a driver error
        lines = str(e).strip().splitlines()
        return f"{type(e).__name__}: {lines[0][:300] if lines else ''}"
    if np.abs(w - latent_blend(*blend_in, psi=0.9, impl="ref")).max() > 1e-4:
        return "the latent-blend kernel's result differs from the reference"
    if np.abs(frame.astype(int) - postprocess(image, 5, 7, impl="ref").astype(int)).max() > 1:
        return "the post-process kernel's result differs from the reference"
    return None
