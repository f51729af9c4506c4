"""What a first GPU run meets, checked on the CPU: a missing Numba, compile modes that nest CUDA graphs, a
torch.compile that cannot build, a CuPy that cannot build its kernels, a capture it spoils, an avatar read from
files on the host while the generator is on the GPU (`meta` stands in for CUDA). Each test failed before its fix."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from live.config import EngineConfig
from live.engines import make_engine
from live.pipeline.render import Renderer
from live.pipeline.scene import demo_directions
from models.checkpoint import random_generator
from models.stylegan2 import GeneratorArch
from tests.conftest import needs_shared

TINY = GeneratorArch(resolution=16, channels=(32, 32, 32), style_dim=32, n_mlp=2)


@pytest.fixture(scope="module")
def tiny():
    G = random_generator(TINY, seed=1)
    w = G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(0))))[0]
    return G, w, demo_directions(G)


def test_without_numba_the_frame_body_still_renders_the_frame(tiny, monkeypatch):
    """Numba missing: the kernels run as the NumPy reference, which must write the body's buffers
    (before the fix it returned new arrays and the body kept showing uninitialised memory)."""
    G, w, d = tiny
    engine = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu"))
    delta = np.linspace(-2, 2, d.n_params).astype(np.float32)
    with_numba = Renderer(engine, w, G.w_avg, d, (40, 24), truncation=0.8)(delta)
    from kernels import dispatch
    monkeypatch.setattr(dispatch, "numba_available", lambda: False)
    renderer = Renderer(engine, w, G.w_avg, d, (40, 24), truncation=0.8)
    renderer.body.frame.fill_(0)
    renderer.body.w.fill_(float("nan"))
    without = renderer(delta)
    assert np.abs(without.astype(int) - with_numba.astype(int)).max() <= 1
    assert without.std() > 0


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_compile_modes_with_inductors_cuda_graphs_are_refused(tiny, mode):
    """max-autotune turns on triton.cudagraphs as reduce-overhead does: Inductor would capture inside the
    frame graph. Only reduce-overhead was refused before."""
    from live.engines.compiled import check_compile_mode
    G, _, _ = tiny
    with pytest.raises(ValueError, match="CUDA graphs"):
        make_engine(G, EngineConfig(backend="compiled", device="cpu", compile_mode=mode))
    check_compile_mode("max-autotune-no-cudagraphs")
    check_compile_mode("default")
    with pytest.raises(ValueError, match="Unrecognized mode"):
        check_compile_mode("fastest")


def test_auto_on_cuda_falls_back_to_eager_when_torch_compile_cannot_build(tiny, monkeypatch, log_messages):
    """Windows without Triton, GPUs Triton does not support: torch.compile fails at the first call. `auto`
    on CUDA (here its order on the meta stand-in device) must start eager instead of crashing."""
    from live.engines import factory

    def compile_without_triton(module, **kwargs):
        def call(*args):
            raise RuntimeError("Cannot find a working triton installation. Either the package is not installed "
                               "or it is too old.")
        return call
    G, w, d = tiny
    assert factory.AUTO_ORDER["cuda"] == ("compiled", "eager")
    monkeypatch.setitem(factory.AUTO_ORDER, "meta", factory.AUTO_ORDER["cuda"])
    monkeypatch.setattr(torch, "compile", compile_without_triton)
    engine = make_engine(G, EngineConfig(backend="auto", device="meta"))
    assert engine.name == "eager" and engine.device.type == "meta"
    assert any("compiled backend cannot run here" in m and "triton" in m for m in log_messages), log_messages
    # Named by the user, the same failure is one clear error, not a traceback from inside torch.compile.
    from live.engines.devices import BackendUnavailable
    with pytest.raises(BackendUnavailable, match="could not build the synthesis here.*triton.*--backend eager"):
        make_engine(G, EngineConfig(backend="compiled", device="meta"))


def test_a_capture_spoilt_by_the_cupy_kernels_is_retried_with_the_torch_twins(tiny, monkeypatch, log_messages):
    """On a failed capture with CuPy kernels the renderer rebuilds the frame body with the torch twins and
    captures that (before: it gave up the graph and kept the CuPy kernels that had just failed)."""
    from types import SimpleNamespace

    from live.pipeline import frame_graph, render
    built = []

    class Body:   # stands in for FrameBody on a CUDA device
        def __init__(self, engine, *args, impl=None):
            self.impl, self.device = impl or "cupy", torch.device("cuda")
            built.append(self.impl)

    class Graph:
        def __init__(self, body):
            if body.impl == "cupy":
                raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
            self.body = body
    monkeypatch.setattr(render, "FrameBody", Body)
    monkeypatch.setattr(frame_graph, "FrameGraph", Graph)
    G, w, d = tiny
    engine = SimpleNamespace(capturable=True, cfg=SimpleNamespace(cuda_graph=True))
    renderer = render.Renderer(engine, w, G.w_avg, d, (16, 16))
    assert built == ["cupy", "torch"]
    assert renderer.body.impl == "torch" and renderer.frame_graph.body is renderer.body
    assert any("rebuilding it with the torch kernels" in m for m in log_messages)


def test_cupy_that_cannot_build_its_kernels_is_not_chosen(monkeypatch, log_messages):
    """`import cupy` works but NVRTC is missing (or built for another CUDA): both kernels are probe-compiled
    and launched before CuPy is chosen, and the torch twins are used instead (before: 'cupy')."""
    import sys
    import types

    from kernels import cupy_probe, dispatch
    from live.engines import devices

    class RawKernel:
        def __init__(self, source, name):
            self.name = name

        def __call__(self, *args):
            raise RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open shared "
                               "object file: No such file or directory")
    fake = types.ModuleType("cupy")
    fake.RawKernel, fake.float32, fake.uint8 = RawKernel, np.float32, np.uint8
    fake.asarray, fake.ascontiguousarray, fake.empty, fake.asnumpy = np.asarray, np.ascontiguousarray, np.empty, np.asarray
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(runtimeGetVersion=lambda: 13000),
                                      Device=lambda index: contextlib.nullcontext(),
                                      get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    monkeypatch.setattr(dispatch, "cupy_available", lambda: True)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(devices, "_warned", set())
    cupy_probe.cupy_kernels_problem.cache_clear()
    from kernels import latent_blend, postprocess
    monkeypatch.setattr(latent_blend, "_cupy_kernel", lambda: RawKernel("", "live_latent_blend"))
    monkeypatch.setattr(postprocess, "_cupy_kernel", lambda: RawKernel("", "live_postprocess"))
    try:
        assert devices.kernels_on_cuda(0) == "torch"
        assert any("cannot build or run its kernels on cuda:0" in m and "libnvrtc" in m for m in log_messages)
        # A CuPy whose kernels work is chosen.
        cupy_probe.cupy_kernels_problem.cache_clear()
        monkeypatch.setattr(latent_blend, "_cupy_kernel", lambda: _NumpyKernel(latent_blend.latent_blend_ref))
        monkeypatch.setattr(postprocess, "_cupy_kernel", lambda: _NumpyKernel(None))
        assert devices.kernels_on_cuda(1) == "cupy"
    finally:
        cupy_probe.cupy_kernels_problem.cache_clear()


class _NumpyKernel:
    """A RawKernel stand-in that computes on the host what the CUDA kernel would (for the probe's test)."""

    def __init__(self, blend):
        self.blend = blend

    def __call__(self, grid, block, args):
        from kernels.postprocess import postprocess_ref
        if self.blend is not None:
            w_s, w_avg, A, bias, dp, m, psi, *_, out = args
            out[...] = self.blend(w_s, w_avg, A, bias, dp, m, float(psi))
        else:
            src, H, W, out_h, out_w, *_, fill_r, fill_g, fill_b, out = args
            out[...] = postprocess_ref(src, int(out_h), int(out_w), (int(fill_r), int(fill_g), int(fill_b)))


@needs_shared
def test_the_scene_puts_the_avatar_on_the_generators_device(fixture_path, quick_avatar, small_directions, monkeypatch):
    """`live run --avatar` on CUDA with the identity guard on and no limits in the file: the limits are measured
    on the generator's device, so w_s and the directions (read from files, on the host) must be there first.
    Before the fix w_s stayed on the host and the first render crashed. `meta` stands in for CUDA."""
    from live.avatar import identity_limits as limits_module
    from live.config_files import load_config
    from live.pipeline import scene as scene_module
    from models import checkpoint
    me = quick_avatar      # made without -d: it holds no identity limits
    real_hash = checkpoint.weights_hash(checkpoint.load_generator(fixture_path))
    monkeypatch.setattr(scene_module, "load_generator", lambda path, device: checkpoint.load_generator(path).to(device))
    for module in (scene_module, checkpoint):   # a meta tensor has no bytes to hash
        monkeypatch.setattr(module, "weights_hash", lambda G: real_hash)
    seen = {}

    def measured(G, w_s, directions, *args, **kwargs):
        seen.update(generator=G.w_avg.device.type, w_s=w_s.device.type, directions=directions.weight.device.type)
        return np.zeros((directions.n_params, 2))
    monkeypatch.setattr(limits_module, "identity_limits", measured)
    cfg = load_config(overrides={"run.avatar": str(me), "run.directions": str(small_directions)})
    scene = scene_module.build_scene(cfg, "meta")
    assert seen == {"generator": "meta", "w_s": "meta", "directions": "meta"}
    assert scene.w_s.device.type == "meta" and scene.directions.weight.device.type == "meta"
    assert isinstance(scene.identity_limits, np.ndarray) and isinstance(scene.p_s, np.ndarray)   # host, for motion


def test_identity_limits_say_when_their_inputs_are_on_different_devices(tiny):
    from live.avatar.identity_limits import identity_limits
    G, w, d = tiny
    with pytest.raises(ValueError, match="put them on one device first"):
        identity_limits(G, w.to("meta"), d, identity=object())
