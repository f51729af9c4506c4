"""Per-frame numeric kernels, each with one signature and three implementations: a NumPy
reference (`impl="ref"`, the definition), a Numba CPU twin and a CuPy CUDA kernel.

latent_blend: delta_p -> W+ code (A dp inside the kernel); postprocess: generator image ->
output frame (resize, letterbox, uint8); one_euro: the One-Euro filter step. dispatch.py picks
the implementation from the data (CuPy/CUDA arrays go to CuPy).
"""
