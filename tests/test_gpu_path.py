"""The CUDA path, checked without a GPU: one compilation, device placement, the warm-up frame,
TensorRT build options, bf16 training only where the GPU has it, CuPy matching torch's CUDA."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from live.config import EngineConfig
from live.engines import make_engine
from live.engines.devices import cupy_mismatch
from live.gan.train_state import resolve_amp
from live.pipeline.frame_body import FrameBody
from live.pipeline.render import Renderer
from live.pipeline.scene import demo_directions
from models.checkpoint import random_generator
from models.image_metrics import psnr
from models.stylegan2 import GeneratorArch
from tests.conftest import needs_cuda, needs_shared

TINY = GeneratorArch(resolution=16, channels=(32, 32, 32), style_dim=32, n_mlp=2)


@pytest.fixture(scope="module")
def tiny():
    G = random_generator(TINY, seed=1)
    w = G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(0))))[0]
    return G, w, demo_directions(G)


@pytest.mark.slow
def test_compiled_engine_compiles_once_through_the_frame_body(tiny):
    """Dynamo guards on grad mode: the frame body calls the engine outside no_grad, and before the fix
    that compiled a second, unfrozen graph (unique_graphs 1 -> 2)."""
    from torch._dynamo.utils import counters
    G, w, d = tiny
    torch._dynamo.reset()
    counters.clear()
    engine = make_engine(G, EngineConfig(backend="compiled", precision="fp32", device="cpu", warmup_iters=1))
    assert counters["stats"]["unique_graphs"] == 1
    body = FrameBody(engine, w, G.w_avg, d, (24, 16))
    for k in range(3):
        body.set_input(np.full(d.n_params, 0.5 * k, np.float32))
        body.body()            # as the renderer calls it: no no_grad around it
    assert counters["stats"]["unique_graphs"] == 1, "the frame body made dynamo compile the synthesis again"
    engine.run(w[None])
    assert counters["stats"]["unique_graphs"] == 1


def test_frame_body_on_a_stand_in_device(tiny):
    """The device dataflow of a frame on the 'meta' device, which stands in for CUDA: every buffer on the
    device, shapes and dtypes through blend, synthesis (fp16) and post-process, no host tensor mixed in."""
    G, w, d = tiny
    engine = make_engine(G, EngineConfig(backend="eager", precision="fp16", device="meta"))
    body = FrameBody(engine, w, G.w_avg, d, (40, 30), truncation=0.8, latent_smoothing=0.5)
    assert body.impl == "torch"
    body.set_input(np.ones(d.n_params, np.float32))
    body.body()
    for name in ("w_s", "A", "dp", "w", "prev_w", "keep", "image", "frame"):
        assert getattr(body, name).device.type == "meta", name
    assert engine.static_in.dtype == torch.float16 and engine.static_in.device.type == "meta"
    assert body.image.shape == (3, 16, 16) and body.image.dtype == torch.float32
    assert body.frame.shape == (30, 40, 3) and body.frame.dtype == torch.uint8
    # A buffer left on the host is an error there, as it would be on a GPU.
    body.prev_w = torch.zeros_like(body.prev_w, device="cpu")
    with pytest.raises(RuntimeError, match="device"):
        body.body()


def test_the_warm_up_frame_does_not_pull_the_first_frame(tiny):
    """Latent smoothing mixes each frame with the previous one; the warm-up frame is not a previous one."""
    G, w, d = tiny
    engine = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu"))
    delta = np.full(d.n_params, 3.0, np.float32)
    warmed = Renderer(engine, w, G.w_avg, d, (16, 16), latent_smoothing=0.7)
    warmed.warm_up()
    fresh = Renderer(engine, w, G.w_avg, d, (16, 16), latent_smoothing=0.7)
    assert np.array_equal(warmed(delta), fresh(delta))
    assert not np.array_equal(warmed(np.zeros_like(delta)), fresh(delta))  # smoothing still acts afterwards


def test_rendering_the_same_frame_twice_on_the_cpu_is_exact(tiny):
    G, w, d = tiny
    engine = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu"))
    r = Renderer(engine, w, G.w_avg, d, (20, 12))
    delta = np.linspace(-2, 2, d.n_params).astype(np.float32)
    a = r(delta)
    assert a.shape == (12, 20, 3) and a.dtype == np.uint8 and np.array_equal(a, r(delta))
    with pytest.raises(ValueError, match=r"delta_p must be \[15\]"):
        r(delta[:3])


# -- TensorRT ---------------------------------------------------------------------------------------------
class FakeTorchTensorRT:
    """Records what the engine asks of torch-tensorrt (2.6+ spellings)."""

    __version__ = "2.6.0"

    def __init__(self):
        self.calls = []
        outer = self

        class dynamo:
            @staticmethod
            def compile(exported, inputs=None, *, enabled_precisions=None, immutable_weights=True, arg_inputs=None):
                outer.calls.append(("compile", {"enabled_precisions": enabled_precisions,
                                                "immutable_weights": immutable_weights}))
                return "engine"

            @staticmethod
            def refit_module_weights(compiled_module, new_weight_module, arg_inputs=None):
                outer.calls.append(("refit", {"module": compiled_module, "weights": new_weight_module}))
                return "refitted"
        self.dynamo = dynamo

    def save(self, module, path, arg_inputs=None):
        self.calls.append(("save", {"arg_inputs": arg_inputs}))
        open(path, "wb").write(b"engine")

    def load(self, path):
        self.calls.append(("load", {}))

        class Program:
            def module(self):
                return "loaded"
        return Program()


@pytest.mark.parametrize("precision, kernels", [("fp16", {torch.float16}), ("bf16", {torch.float32, torch.bfloat16}),
                                               ("fp32", {torch.float32})])
def test_tensorrt_builds_in_the_asked_precision_and_refittable(tmp_path, precision, kernels):
    """Before the fix the build passed no enabled_precisions: an 'fp16' engine was fp32."""
    from live.engines.tensorrt import TensorRTEngine
    trt = FakeTorchTensorRT()
    engine = TensorRTEngine.__new__(TensorRTEngine)
    engine.cfg = EngineConfig(precision=precision)
    engine.static_in = torch.zeros(1, 4, 8)
    path = tmp_path / "synthesis.ep"
    assert engine._build(trt, path, "exported program") == "engine" and path.is_file()
    name, kwargs = trt.calls[0]
    assert name == "compile" and kwargs["enabled_precisions"] == kernels and kwargs["immutable_weights"] is False
    assert engine._load_and_refit(trt, path, "avatar weights") == "refitted"
    assert trt.calls[-1] == ("refit", {"module": "loaded", "weights": "avatar weights"})


def test_tensorrt_engine_is_cached_per_architecture_not_per_avatar():
    """Pivotal tuning changes weights, not the architecture: every avatar of a generator reuses one build."""
    from live.avatar.avatar_file import apply_tuning
    from live.engines.tensorrt import architecture_key, engine_cache_key
    G = random_generator(TINY, seed=1)
    tuned = apply_tuning(G, {"synthesis.conv1.conv.weight": torch.full_like(G.synthesis.conv1.conv.weight, 0.01)})
    other = random_generator(dataclasses.replace(TINY, channels=(32, 32, 16)), seed=1)
    key = lambda g: engine_cache_key(architecture_key(g), "NVIDIA H100", "10.3", "2.6", "fp16", (1, 6, 32))  # noqa: E731
    assert key(G) == key(tuned) != key(other)


def test_refittable_keyword_follows_the_installed_release():
    from live.engines.tensorrt import inputs_keyword, refittable_option
    assert refittable_option(lambda ep, inputs, immutable_weights=True: 0) == {"immutable_weights": False}
    assert refittable_option(lambda ep, inputs, make_refittable=False: 0) == {"make_refittable": True}
    assert refittable_option(lambda ep, inputs, refit=False: 0) == {"refit": True}
    assert inputs_keyword(lambda m, p, arg_inputs=None: 0) == "arg_inputs"
    assert inputs_keyword(lambda m, p, inputs=None: 0) == "inputs"


# -- training precision, CuPy --------------------------------------------------------------------------
def test_bf16_training_only_where_the_gpu_has_it(monkeypatch):
    cuda = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)   # a T4 or V100
    assert resolve_amp("auto", cuda) is False
    with pytest.raises(ValueError, match="no bfloat16"):
        resolve_amp("on", cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)    # Ampere and newer
    assert resolve_amp("auto", cuda) is True and resolve_amp("off", cuda) is False
    assert resolve_amp("auto", torch.device("cpu")) is False
    with pytest.raises(ValueError, match="needs a CUDA device"):
        resolve_amp("on", torch.device("cpu"))


def test_cupy_must_match_torchs_cuda():
    assert cupy_mismatch("12.4", 12040) is None and cupy_mismatch("13.0", 13000) is None
    message = cupy_mismatch("13.0", 12080)
    assert "live[gpu-cuda13]" in message and "cupy-cuda12x" in message
    assert cupy_mismatch(None, 12040) is None        # a CPU build of torch: nothing to share


def test_kernels_follow_the_tensors_device():
    from kernels.dispatch import resolve_impl
    assert resolve_impl("auto", torch.zeros(2, device="meta")) == "torch"
    assert resolve_impl("auto", torch.zeros(2)) == "numba" and resolve_impl("auto", np.zeros(2)) == "numba"


# -- on a GPU (python -m bench gpu runs these) -------------------------------------------------------------
def _cpu_reference(G, w, d, delta, size, truncation=1.0):
    """The frame the CPU path renders (eager fp32, Numba kernels): what the GPU must reproduce."""
    engine = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu"))
    return Renderer(engine, w, G.w_avg, d, size, truncation=truncation)(delta)


@needs_cuda
@needs_shared
@pytest.mark.parametrize("smoothing", [0.0, 0.5])
def test_frame_graph_matches_the_cpu_reference_and_compiles_once(face128, smoothing):
    """The whole frame as one CUDA graph: the CPU reference's picture (fp16 vs fp32: PSNR >= 35 dB), the same
    frames as separate launches, one compilation, and no second capture by the engine."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    G = face128
    d = demo_directions(G)
    w = G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(0)), 0.7))[0]
    engine = make_engine(G, EngineConfig(backend="compiled", precision="fp16", device="cuda"))
    graphed = Renderer(engine, w, G.w_avg, d, (320, 240), truncation=0.9, latent_smoothing=smoothing)
    separate = Renderer(engine, w, G.w_avg, d, (320, 240), truncation=0.9, latent_smoothing=smoothing)
    assert graphed.frame_graph is not None, "the compiled CUDA path must capture the frame graph"
    separate.frame_graph = None
    rng = np.random.default_rng(0)
    for _ in range(3):
        delta = rng.normal(0, 2, d.n_params).astype(np.float32)
        a, b = graphed(delta), separate(delta)
        assert a.shape == (240, 320, 3) and a.dtype == np.uint8
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    if smoothing == 0:
        ref = _cpu_reference(G, w, d, delta, (320, 240), truncation=0.9)
        assert psnr(a, ref, 255) >= 35
    assert engine.cuda_graph is None, "the engine captured a graph of its own beside the frame graph"
    assert counters["stats"]["unique_graphs"] == 1


@needs_cuda
@needs_shared
def test_torch_kernels_on_cuda_match_the_cpu_reference(face128, monkeypatch):
    """Without CuPy (or with a mismatched one) the kernels run as torch ops on the GPU: same picture."""
    monkeypatch.setattr("live.pipeline.frame_body.kernels_on_cuda", lambda *device: "torch")
    G = face128
    d = demo_directions(G)
    w = G.broadcast(G.w_avg[None])[0]
    engine = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cuda"))
    delta = np.linspace(-3, 3, d.n_params).astype(np.float32)
    frame = Renderer(engine, w, G.w_avg, d, (200, 100))(delta)
    assert psnr(frame, _cpu_reference(G, w, d, delta, (200, 100)), 255) >= 45


@needs_cuda
def test_a_second_gpu_runs_the_frame_on_its_own_device(tiny):
    """cuda:N with N != 0: the kernels must load and launch on device N (CuPy's current device)."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    G, w, d = tiny
    engine = make_engine(G, EngineConfig(backend="compiled", precision="fp16", device="cuda:1"))
    frame = Renderer(engine, w, G.w_avg, d, (32, 32))(np.ones(d.n_params, np.float32))
    assert frame.shape == (32, 32, 3) and frame.std() > 0


def test_fp16_headroom_sees_every_ops_largest_value(tiny):
    from bench.fp16_headroom import FP16_MAX, PeakValues, peaks
    with PeakValues() as mode:
        torch.ones(3) * 70000.0
    assert mode.peak["aten.mul"] == 70000.0 > FP16_MAX
    G, _, _ = tiny
    result = peaks(G, samples=1, shift=3.0)
    assert set(result) == {"samples", "W+ + 3 sd"} and max(result["samples"].values()) > 0
