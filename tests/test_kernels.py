"""Latent blend and post-process kernels: NumPy reference == Numba twin (== CuPy where a GPU is)."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from kernels.latent_blend import CUDA_SOURCE as BLEND_SRC
from kernels.latent_blend import latent_blend, layer_strength
from kernels.postprocess import CUDA_SOURCE as POST_SRC
from kernels.postprocess import content_rect, postprocess
from models.images import to_uint8_rgb
from tests.conftest import needs_cupy


def _blend_inputs(L=12, S=64, Ls=8, P=15, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(L, S)).astype(np.float32), rng.normal(size=S).astype(np.float32),
            rng.normal(size=(Ls * S, P)).astype(np.float32) * 0.1, rng.normal(size=Ls * S).astype(np.float32) * 0.01,
            rng.uniform(-6, 6, size=P).astype(np.float32), layer_strength(L, Ls, 0.8))


def test_blend_reference_is_the_formula():
    w_s, w_avg, A, b, dp, m = _blend_inputs()
    out = latent_blend(w_s, w_avg, A, b, dp, m, psi=0.7, impl="ref")
    shift = (A @ dp + b).reshape(8, 64) * 0.8
    expected = w_s.copy()
    expected[:8] += shift
    expected = w_avg + 0.7 * (expected - w_avg)
    assert np.abs(out - expected).max() < 1e-5
    # psi 1 and zero change give w_s back; layers beyond the shifted ones are untouched
    assert np.array_equal(latent_blend(w_s, w_avg, A, b * 0, dp * 0, m, 1.0, impl="ref"), w_s)
    assert np.allclose(out[8:], (w_avg + 0.7 * (w_s - w_avg))[8:], atol=1e-6)


@pytest.mark.parametrize("psi", [1.0, 0.6])
def test_blend_numba_equals_reference(psi):
    args = _blend_inputs(seed=3)
    assert np.abs(latent_blend(*args, psi=psi, impl="numba") - latent_blend(*args, psi=psi, impl="ref")).max() < 1e-5


def test_blend_shape_errors():
    w_s, w_avg, A, b, dp, m = _blend_inputs()
    with pytest.raises(ValueError, match="strength must be"):
        latent_blend(w_s, w_avg, A, b, dp, m[:5], impl="numba")
    with pytest.raises(ValueError, match="A must be"):
        latent_blend(w_s, w_avg, A[:-3], b, dp, m, impl="ref")


@needs_cupy
def test_blend_cupy_equals_reference_without_copies():
    import cupy
    args = _blend_inputs(seed=5)
    gpu = [torch.from_numpy(a).cuda() for a in args]
    out = latent_blend(*[cupy.from_dlpack(t) for t in gpu], psi=0.7, impl="cupy")
    assert np.abs(cupy.asnumpy(out) - latent_blend(*args, psi=0.7, impl="ref")).max() < 1e-5


@pytest.mark.parametrize("impl", ["ref", "numba"])
def test_every_blend_impl_writes_the_callers_buffer(impl):
    """The frame body renders from its own buffers: a kernel that returns a new array and leaves `out`
    alone (the NumPy reference did, and it stands in whenever Numba is missing) renders garbage."""
    args = _blend_inputs(seed=7)
    out = np.full((12, 64), np.nan, np.float32)
    returned = latent_blend(*args, psi=0.8, impl=impl, out=out)
    assert returned is out
    assert np.abs(out - latent_blend(*args, psi=0.8, impl="ref")).max() < 1e-5
    with pytest.raises(ValueError, match="out must be"):
        latent_blend(*args, psi=0.8, impl=impl, out=np.zeros((12, 63), np.float32))


@pytest.mark.parametrize("impl", ["ref", "numba"])
def test_every_postprocess_impl_writes_the_callers_buffer(impl):
    img = _image(4)
    out = np.zeros((50, 70, 3), np.uint8)
    returned = postprocess(img, 50, 70, fill=(1, 2, 3), impl=impl, out=out)
    assert returned is out
    assert np.abs(out.astype(int) - postprocess(img, 50, 70, fill=(1, 2, 3), impl="ref").astype(int)).max() <= 1
    assert out.std() > 10


def test_without_numba_the_kernels_fall_back_to_the_reference(monkeypatch):
    from kernels import dispatch
    monkeypatch.setattr(dispatch, "numba_available", lambda: False)
    assert dispatch.resolve_impl("numba", np.zeros(2)) == "ref" == dispatch.resolve_impl("auto", np.zeros(2))


def _image(seed=0, H=64, W=64):
    rng = np.random.default_rng(seed)
    img = rng.normal(scale=0.7, size=(3, H, W)).astype(np.float32)
    img[0, 3, 5] = np.nan
    img[1, 10, 10] = 5.0
    return img


@pytest.mark.parametrize("size", [(64, 64), (128, 128), (120, 160), (48, 100), (100, 40)])
def test_postprocess_numba_equals_reference(size):
    img = _image(1)
    a = postprocess(img, *size, fill=(10, 20, 30), impl="ref")
    b = postprocess(img, *size, fill=(10, 20, 30), impl="numba")
    assert a.shape == (*size, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_postprocess_matches_torch():
    img = _image(2)
    same = postprocess(img, 64, 64, impl="numba").astype(int)
    diff = np.abs(same - to_uint8_rgb(torch.from_numpy(img)[None])[0].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01  # the same up to float rounding at .5
    up = postprocess(img, 128, 128, impl="ref")
    t = torch.nn.functional.interpolate(torch.nan_to_num(torch.from_numpy(img)[None], nan=-1.0), size=(128, 128),
                                        mode="bilinear", align_corners=False)
    assert np.abs(up.astype(int) - to_uint8_rgb(t)[0].astype(int)).max() <= 1


def test_letterbox_geometry_and_fill():
    img = np.zeros((3, 64, 64), np.float32)
    out = postprocess(img, 480, 640, fill=(7, 8, 9), impl="numba")
    x0, y0, cw, ch = content_rect(64, 64, 480, 640)
    assert (x0, y0, cw, ch) == (80, 0, 480, 480)
    assert (out[:, :80] == [7, 8, 9]).all() and (out[:, 560:] == [7, 8, 9]).all()
    assert (out[:, 80:560] == 128).all()  # 0.0 -> 127.5 -> 128 (half to even)


@needs_cupy
def test_postprocess_cupy_equals_reference():
    import cupy
    img = _image(4)
    for size in [(64, 64), (120, 160), (480, 640)]:
        a = postprocess(img, *size, impl="ref")
        b = cupy.asnumpy(postprocess(cupy.from_dlpack(torch.from_numpy(img).cuda()), *size, impl="cupy"))
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs nvcc to compile CUDA source")
@pytest.mark.parametrize("name, source", [("blend", BLEND_SRC), ("post", POST_SRC)])
def test_cuda_sources_compile(tmp_path, name, source):
    """Without a GPU the CuPy kernels cannot run; their CUDA source can still be compiled."""
    src = tmp_path / f"{name}.cu"
    src.write_text(source)
    result = subprocess.run(["nvcc", "-c", "-o", str(tmp_path / "o.o"), str(src)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
