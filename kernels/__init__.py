"""Custom kernels: each a NumPy reference, a Numba CPU twin and a CuPy GPU kernel with one signature.

Filled by the tracking (One-Euro smoothing) and live-loop (latent blend, post-process) work.
"""
