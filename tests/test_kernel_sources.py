"""The CUDA source strings of kernels/, run on the CPU (tests/cuda_host.py), against the NumPy references.

CuPy compiles these strings only on a GPU; here g++ builds the same text with a prelude for the CUDA
built-ins and the grid runs as loops, so an index, bound or rounding bug in a kernel fails in CI.
Every array runs with guard bytes around it (a write past either end fails the test); outputs start
as NaN (floats) or as two different fills (uint8), so an element a kernel never writes shows too.
"""

import numpy as np
import pytest

from kernels import latent_blend as blend_mod
from kernels import one_euro as euro_mod
from kernels import postprocess as post_mod
from kernels.latent_blend import latent_blend_ref, layer_strength
from kernels.one_euro import OneEuroState, one_euro_step
from kernels.postprocess import content_rect, postprocess, postprocess_ref
from tests import cuda_host
from tests.cuda_host import (
    OutOfBoundsWrite,
    latent_blend_host,
    one_euro_host,
    postprocess_host,
)

pytestmark = pytest.mark.skipif(cuda_host.compiler_missing() is not None,
                                reason=cuda_host.compiler_missing() or "")

# ---- latent_blend: (L, S, Ls, P, psi, strength) ----
# strength: "flat" = layer_strength(L, Ls, 0.8) (0 beyond Ls); "vary" = a different value per shifted
# layer, 0 beyond; "beyond" = non-zero on every layer (the kernel must ignore layers >= Ls)
BLEND_CASES = [
    (1, 1, 1, 1, 1.0, "flat"), (1, 1, 0, 15, 0.7, "beyond"), (1, 1, 1, 15, 0.5, "vary"),
    (2, 3, 1, 15, 1.0, "vary"), (3, 5, 3, 1, 0.7, "vary"), (1, 255, 1, 15, 1.0, "flat"),
    (1, 256, 1, 15, 0.7, "vary"), (1, 257, 1, 1, 1.3, "vary"), (16, 16, 16, 1, 0.7, "beyond"),
    (3, 100, 2, 7, 1.0, "beyond"), (5, 51, 5, 15, 0.0, "vary"), (7, 37, 3, 4, 0.9, "vary"),
    (12, 64, 8, 15, 0.7, "flat"), (12, 64, 12, 15, 1.0, "vary"), (14, 512, 14, 15, 0.7, "vary"),
    (18, 512, 8, 15, 1.0, "vary"), (18, 512, 18, 15, 0.6, "beyond"), (18, 512, 0, 15, 0.7, "vary"),
    (9, 129, 4, 15, 1.0, "vary"), (257, 1, 100, 15, 0.8, "vary"), (2, 300, 1, 15, 1.0, "beyond"),
    (4, 511, 2, 1, 0.75, "vary"),
]


def _blend_inputs(L, S, Ls, P, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "flat":
        m = layer_strength(L, Ls, 0.8)
    else:
        m = rng.uniform(-0.5, 2.0, L).astype(np.float32)
        m[Ls:] = 0 if kind == "vary" else m[Ls:]
    return (rng.normal(size=(L, S)).astype(np.float32) * 2, rng.normal(size=S).astype(np.float32),
            rng.normal(size=(Ls * S, P)).astype(np.float32) * 0.1, rng.normal(size=Ls * S).astype(np.float32) * 0.1,
            rng.uniform(-6, 6, size=P).astype(np.float32), m)


def check_blend(case, seed=0, source=None):
    L, S, Ls, P, psi, kind = case
    args = _blend_inputs(L, S, Ls, P, kind, seed)
    got = latent_blend_host(*args, psi=psi, source=source)
    np.testing.assert_allclose(got, latent_blend_ref(*args, psi), rtol=1e-5, atol=1e-5, err_msg=f"case {case}")
    return got


@pytest.mark.parametrize("case", BLEND_CASES, ids=lambda c: "L{}_S{}_Ls{}_P{}_psi{}_{}".format(*c))
def test_latent_blend_source_equals_reference(case):
    check_blend(case, seed=sum(case[:4]))


# ---- postprocess: (H, W, out_h, out_w): up/down scale, letterbox on either axis, odd sizes ----
POST_CASES = [
    (1, 1, 1, 1), (1, 1, 3, 5), (1, 5, 1, 1), (2, 3, 1, 1), (3, 1, 9, 9), (1, 3, 9, 9), (5, 7, 11, 3),
    (64, 64, 64, 64), (31, 47, 31, 47), (64, 64, 128, 128), (64, 64, 32, 32), (64, 64, 15, 17),
    (64, 64, 16, 16), (64, 64, 1, 257), (64, 64, 257, 1), (37, 53, 120, 160), (64, 64, 480, 640),
    (48, 100, 100, 40), (100, 40, 48, 100), (7, 13, 13, 7), (16, 16, 33, 65), (9, 16, 16, 9),
    (16, 9, 9, 16), (200, 150, 19, 23), (128, 128, 241, 97),
]


def _image(H, W, seed):
    rng = np.random.default_rng(seed)
    img = rng.normal(scale=0.7, size=(3, H, W)).astype(np.float32)
    img[rng.random(img.shape) < 0.02] = np.nan                     # reads as -1 (black)
    wild = rng.random(img.shape) < 0.05
    img[wild] = rng.uniform(-4, 4, wild.sum())                      # clamped to [-1, 1]
    img[rng.random(img.shape) < 0.02] = 0.0                         # 127.5 exactly: rounds to 128
    img[rng.random(img.shape) < 0.005] = np.inf                     # clamped to white, neighbours untouched
    img[rng.random(img.shape) < 0.005] = -np.inf
    return img


def check_post(case, seed=0, source=None):
    H, W, out_h, out_w = case
    img = _image(H, W, seed)
    fill = tuple(int(v) for v in np.random.default_rng(seed).integers(0, 256, 3))
    want = postprocess_ref(img, out_h, out_w, fill).astype(int)
    runs = [postprocess_host(img, out_h, out_w, fill, source=source, out=np.full((out_h, out_w, 3), v, np.uint8))
            for v in (0, 255)]
    assert np.array_equal(runs[0], runs[1]), f"case {case}: pixels left unwritten"
    diff = np.abs(runs[0].astype(int) - want)
    # the same arithmetic in the same order: only a value within float epsilon of .5 may round apart
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, \
        f"case {case}: {(diff > 0).sum()} values differ, up to {diff.max()}, first at {np.argwhere(diff)[:3].tolist()}"
    return runs[0]


@pytest.mark.parametrize("case", POST_CASES, ids=lambda c: "{}x{}_to_{}x{}".format(*c))
def test_postprocess_source_equals_reference(case):
    out = check_post(case, seed=sum(case))
    _, _, cw, ch = content_rect(*case)
    assert out.shape == (case[2], case[3], 3) and 0 < cw <= case[3] and 0 < ch <= case[2]


def test_postprocess_letterbox_and_rounding_exact():
    img = np.zeros((3, 6, 6), np.float32)
    img[:, 0, 0] = np.nan
    out = postprocess_host(img, 6, 10, fill=(7, 8, 9))                        # x0 = 2, cw = 6: no resampling
    assert (out[:, :2] == [7, 8, 9]).all() and (out[:, 8:] == [7, 8, 9]).all()
    assert (out[0, 2] == 0).all()                                              # NaN -> black
    content = out[:, 2:8].reshape(-1, 3)
    assert (content[1:] == 128).all()                                          # 0.0 -> 127.5 -> 128 (half to even)


def test_postprocess_infinite_pixels_clamp_like_the_reference():
    """Found by this harness: the kernel (and the Numba twin) let +-inf through, inf * 0 weight = NaN, so a
    pixel with an inf anywhere in its 2x2 neighbourhood turned black. Now +-inf read as +-FLT_MAX."""
    img = np.zeros((3, 4, 4), np.float32)
    img[:, 1, 2] = np.inf
    img[:, 2, 2] = -np.inf
    ref = postprocess_ref(img, 4, 4)
    assert np.array_equal(postprocess_host(img, 4, 4), ref)
    assert np.array_equal(postprocess(img, 4, 4, impl="numba"), ref)
    assert ref[1, 2, 0] == 255 and ref[2, 2, 0] == 0 and (ref[0] == 128).all()


# ---- one_euro: D elements, float32 / float64 state, several steps with varying dt ----
EURO_CASES = [(d, dt) for d in (1, 2, 3, 15, 100, 255, 256, 257, 511, 1000, 4099) for dt in ("float32", "float64")]
DTS = (1 / 30, 1 / 60, 0.1, 0.004, 1 / 25, 0.5, 1 / 30)


def check_one_euro(case, seed=0, body=None):
    D, name = case
    dtype = np.dtype(name)
    rng = np.random.default_rng(seed)
    kern = one_euro_host(body)
    min_cutoff = rng.uniform(0.2, 5.0, D).astype(dtype)
    beta = np.where(rng.random(D) < 0.2, 0, rng.uniform(0, 1.0, D)).astype(dtype)
    d_cutoff = float(rng.choice([0.5, 1.0, 2.0]))
    ref, host = OneEuroState.zeros(D, dtype=dtype), OneEuroState.zeros(D, dtype=dtype)
    track = np.cumsum(rng.normal(0, 3, (len(DTS), D)), axis=0).astype(dtype)
    for k, dt in enumerate(DTS):
        want = one_euro_step(track[k], ref, dt, min_cutoff, beta, d_cutoff, impl="ref")
        if k == 0:  # the first sample passes through, outside the kernel (as one_euro_step does)
            host.x_hat[...], host.dx_hat[...] = track[0], 0
            continue
        # the kernel computes in double: one step from the same state, in float64, rounded to T
        lock = OneEuroState(host.x_hat.astype(np.float64), host.dx_hat.astype(np.float64), True)
        exact = euro_mod._step_ref(track[k].astype(np.float64), lock, dt, min_cutoff.astype(np.float64),
                                   beta.astype(np.float64), d_cutoff)
        out = np.full(D, np.nan, dtype)
        kern(track[k], float(dt), min_cutoff, beta, float(d_cutoff), host.x_hat, host.dx_hat, out)
        msg = f"case {case}, step {k}"
        np.testing.assert_allclose(out, exact.astype(dtype), rtol=1e-6 if name == "float32" else 1e-12, err_msg=msg)
        np.testing.assert_array_equal(host.x_hat, out, err_msg=msg)
        np.testing.assert_allclose(host.dx_hat, lock.dx_hat.astype(dtype), rtol=1e-6, atol=1e-6, err_msg=msg)
        # and the whole track against the reference run in T (float32: its own float32 rounding)
        tol = 1e-12 if name == "float64" else 1e-5
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.abs(track).max(), err_msg=msg)
        np.testing.assert_allclose(host.dx_hat, ref.dx_hat, rtol=tol * 10, atol=tol * np.abs(ref.dx_hat).max(),
                                   err_msg=msg)


@pytest.mark.parametrize("case", EURO_CASES, ids=lambda c: f"D{c[0]}_{c[1]}")
def test_one_euro_source_equals_reference(case):
    check_one_euro(case, seed=case[0])


# ---- the modules' own launch code (their impl="cupy" branches) on the host kernels ----

def test_module_launch_code_runs_the_same_kernels():
    args = _blend_inputs(7, 37, 3, 4, "vary", 1)
    img = _image(37, 53, 2)
    with cuda_host.cupy_branch_on_host(blend_mod, post_mod, euro_mod):
        blend = blend_mod.latent_blend(*args, psi=0.9, impl="cupy")
        post = post_mod.postprocess(img[None], 120, 160, fill=(1, 2, 3), impl="cupy")
        state = OneEuroState.zeros(300, dtype=np.float32)
        euro = [euro_mod.one_euro_step(np.full(300, v, np.float32), state, 0.04, 1.0, 0.3, impl="cupy")
                for v in (0.0, 1.0, 3.0)]
    assert np.array_equal(blend, latent_blend_host(*args, psi=0.9))
    assert np.array_equal(post, postprocess_host(img, 120, 160, fill=(1, 2, 3)))
    ref = OneEuroState.zeros(300, dtype=np.float32)
    want = [one_euro_step(np.full(300, v, np.float32), ref, 0.04, 1.0, 0.3, impl="ref") for v in (0.0, 1.0, 3.0)]
    np.testing.assert_allclose(np.array(euro), np.array(want), rtol=1e-6)
    assert blend_mod._cupy_kernel.cache_info().currsize == 0  # no host kernel left behind for a real GPU run


def test_thread_order_does_not_matter():
    """Threads run in any order on a GPU: the kernels read nothing another thread writes."""
    args = _blend_inputs(9, 129, 4, 15, "vary", 3)
    assert np.array_equal(latent_blend_host(*args, psi=0.7), latent_blend_host(*args, psi=0.7, reverse=True))
    img = _image(37, 53, 4)
    assert np.array_equal(postprocess_host(img, 120, 160), postprocess_host(img, 120, 160, reverse=True))


def test_launch_arguments_are_checked():
    args = _blend_inputs(2, 3, 1, 15, "vary", 0)
    kern = cuda_host.HostRawKernel(blend_mod.CUDA_SOURCE, "live_latent_blend")
    assert [p.name for p in kern.params][-6:] == ["psi", "L", "S", "L_shift", "P", "out"]  # read from the source
    out = np.empty((2, 3), np.float32)
    with pytest.raises(TypeError, match="np.int32"):   # a Python int reaches CuPy as int64
        kern((1,), (256,), (*args, np.float32(1), 2, np.int32(3), np.int32(1), np.int32(15), out))
    with pytest.raises(TypeError, match="float32 array"):
        kern((1,), (256,), (*args[:5], args[5].astype(np.float64), np.float32(1), np.int32(2), np.int32(3),
                            np.int32(1), np.int32(15), out))


# ---- the harness catches bugs: each mutation of a source must fail its comparison ----
MUTATIONS = [
    ("blend: strength of layer 0 on every layer", "blend", "shift = strength[l] * acc;", "shift = strength[0] * acc;"),
    ("blend: row offset off by one", "blend", "A + (size_t)i * P;", "A + (size_t)i * P + 1;"),
    ("post: letterbox right bound off by one", "post", "x >= x0 + cw", "x > x0 + cw"),
    ("post: round toward zero", "post", "rintf((val + 1.0f) * 127.5f)", "((val + 1.0f) * 127.5f)"),
    ("post: NaN no longer black", "post", "isnan(v) ? -1.0f :", "isnan(v) ? 0.0f :"),
    ("post: inf no longer clamped", "post", "fminf(fmaxf(v, -3.402823466e+38f), 3.402823466e+38f)", "v"),
    ("euro: derivative not smoothed", "euro", "dx_hat = (T)edx;", "dx_hat = (T)dx;"),
]


@pytest.mark.parametrize("what, kernel, old, new", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_the_harness_catches_a_mutated_kernel(what, kernel, old, new):
    source = {"blend": blend_mod.CUDA_SOURCE, "post": post_mod.CUDA_SOURCE, "euro": euro_mod.CUPY_BODY}[kernel]
    assert source.count(old) == 1, f"the mutation {what!r} no longer applies to the source: update it"
    bad = source.replace(old, new)
    check = {"blend": lambda c: check_blend(c, 0, bad), "post": lambda c: check_post(c, 0, bad),
             "euro": lambda c: check_one_euro(c, 0, bad)}[kernel]
    cases = {"blend": BLEND_CASES, "post": POST_CASES, "euro": EURO_CASES[::5]}[kernel]
    caught = 0
    for case in cases:
        try:
            check(case)
        except AssertionError:
            caught += 1
    assert caught, f"no case catches the mutation {what!r}"


def test_the_harness_catches_a_write_past_the_end():
    """`i > L * S` lets thread L*S write one float past `out`: the guard bytes catch it."""
    old = "if (i >= L * S) return;"
    assert blend_mod.CUDA_SOURCE.count(old) == 1, "the bound check changed: update this mutation"
    bad = blend_mod.CUDA_SOURCE.replace(old, "if (i > L * S) return;")
    check_blend((3, 100, 2, 7, 1.0, "beyond"))  # the real source: fine
    with pytest.raises(OutOfBoundsWrite, match="after the end of out "):
        check_blend((3, 100, 2, 7, 1.0, "beyond"), source=bad)
