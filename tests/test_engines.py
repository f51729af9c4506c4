"""Engines: one interface, same images. CPU here; the CUDA-graph path where a GPU is present."""

import dataclasses

import pytest
import torch

from live.config import EngineConfig
from live.engines import BackendUnavailable, make_engine
from live.engines.export import export_synthesis
from live.engines.factory import resolve_engine_config
from live.engines.tensorrt import engine_cache_key
from tests.conftest import needs_cuda, needs_shared, psnr

CPU = EngineConfig(device="cpu")


@pytest.mark.parametrize("has_bf16, precision", [(False, "fp32"), (True, "bf16")])
def test_auto_resolves_to_eager_on_cpu(monkeypatch, has_bf16, precision):
    """Without openvino and onnxruntime: eager, fp32 everywhere; mixed bf16 only where the CPU has bf16
    instructions (there it is 2x faster compiled). The runtimes' own choices: tests/test_runtimes.py."""
    monkeypatch.setattr("live.engines.factory.cpu_has_bf16", lambda: has_bf16)
    monkeypatch.setattr("live.engines.factory.installed", lambda b: b in ("eager", "compiled"))
    cfg = resolve_engine_config(CPU)
    assert (cfg.backend, cfg.precision, cfg.device) == ("eager", precision, "cpu")


def test_unknown_backend_and_precision_are_rejected(face128):
    with pytest.raises(ValueError, match="backend must be auto or one of"):
        make_engine(face128, dataclasses.replace(CPU, backend="magic"))
    with pytest.raises(ValueError, match="precision must be one of"):
        make_engine(face128, dataclasses.replace(CPU, backend="eager", precision="int4"))


@needs_shared
def test_eager_fp32_matches_golden(face128, golden):
    engine = make_engine(face128, dataclasses.replace(CPU, backend="eager", precision="fp32"))
    out = engine.run(golden["w_plus"])
    assert out.shape == (4, 3, 128, 128) and out.device.type == "cpu"
    assert (out - golden["img_w_plus"]).abs().max() <= 2e-4


@needs_shared
@pytest.mark.slow
def test_eager_fp16_psnr(face128, golden):
    engine = make_engine(face128, dataclasses.replace(CPU, backend="eager", precision="fp16"))
    out = engine.run(golden["w_plus"][:1])
    assert out.dtype == torch.float16
    assert psnr(out.float(), golden["img_w_plus"][:1]) >= 40


@needs_shared
def test_bf16_is_mixed_precision_and_close(face128, golden):
    """bf16: convolutions in bfloat16 under autocast, fp32 weights and image out; PSNR >= 40 dB (51-55 measured)."""
    engine = make_engine(face128, dataclasses.replace(CPU, backend="eager", precision="bf16"))
    out = engine.run(golden["w_plus"][:2])
    assert out.dtype == torch.float32
    assert next(engine.module.parameters()).dtype == torch.float32
    assert psnr(out, golden["img_w_plus"][:2]) >= 40
    assert (out - golden["img_w_plus"][:2]).abs().max() > 1e-4   # it really ran in bf16


@needs_shared
def test_static_engine_rejects_wrong_shape(face128, golden):
    engine = make_engine(face128, dataclasses.replace(CPU, backend="compiled", torch_compile=False))
    with pytest.raises(ValueError, match=r"\[1, 12, 512\]"):
        engine.run(golden["w_plus"])  # batch 4 into a batch-1 engine


@needs_shared
@pytest.mark.slow
def test_compiled_cpu_fp32_matches_golden_and_follows_input(face128, golden):
    engine = make_engine(face128, dataclasses.replace(CPU, backend="compiled", precision="fp32", warmup_iters=1))
    for i in range(2):  # a second input must give a second image, not the cached first one
        out = engine.run(golden["w_plus"][i:i + 1]).clone()
        assert (out - golden["img_w_plus"][i:i + 1]).abs().max() <= 2e-4


@needs_shared
@pytest.mark.slow
def test_compiled_fp16_psnr_vs_eager_fp32(face128, golden):
    """Acceptance: compiled fp16 vs eager fp32 on the fixture, PSNR >= 40 dB (CPU inductor here)."""
    ref = make_engine(face128, dataclasses.replace(CPU, backend="eager", precision="fp32")).run(golden["w_plus"][:1])
    fast = make_engine(face128, dataclasses.replace(CPU, backend="compiled", precision="fp16", warmup_iters=1))
    out = fast.run(golden["w_plus"][:1]).float()
    assert psnr(out, ref) >= 40


@needs_shared
def test_synthesis_exports_cleanly(face128, golden):
    """The graph TensorRT compiles: one input, one output, no graph breaks, same numbers."""
    exported = export_synthesis(face128, batch=1)
    placeholders = [n for n in exported.graph.nodes if n.op == "placeholder"]
    user_inputs = exported.graph_signature.user_inputs
    assert len(user_inputs) == 1 and len(exported.graph_signature.user_outputs) == 1
    assert len(placeholders) >= 1
    out = exported.module()(golden["w_plus"][:1])
    assert (out - golden["img_w_plus"][:1]).abs().max() <= 2e-4
    # Only standard aten ops: nothing Python-side that TensorRT could not convert.
    targets = {str(n.target) for n in exported.graph.nodes if n.op == "call_function"}
    assert any("conv2d" in t or "convolution" in t for t in targets)
    assert all(t.startswith("aten.") or t.startswith("<built-in") for t in targets), targets


@needs_shared
@pytest.mark.slow
def test_synthesis_exports_in_fp16(face128, golden):
    exported = export_synthesis(face128, batch=1, dtype=torch.float16)
    out = exported.module()(golden["w_plus"][:1].half())
    assert out.dtype == torch.float16 and psnr(out.float(), golden["img_w_plus"][:1]) >= 40


def test_tensorrt_backend_says_what_is_missing(face128):
    try:
        import torch_tensorrt  # noqa: F401
        pytest.skip("torch-tensorrt is installed here; the missing-package message is not reachable")
    except ImportError:
        pass
    with pytest.raises(BackendUnavailable, match=r"pip install 'live\[tensorrt\]'.*--backend compiled"):
        make_engine(face128, dataclasses.replace(CPU, backend="tensorrt"))


def test_tensorrt_cache_key_covers_everything_that_invalidates_an_engine():
    arch = {"resolution": 256, "channels": [512] * 7}
    base = dict(architecture=arch, gpu_name="NVIDIA H100", trt_version="10.3", torch_trt_version="2.5",
                precision="fp16", input_shape=(1, 14, 512))
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base)
    for field, other in [("architecture", {**arch, "channels": [256] * 7}), ("gpu_name", "NVIDIA A100"),
                         ("trt_version", "10.4"),
                         ("torch_trt_version", "2.6"), ("precision", "fp32"), ("input_shape", (2, 14, 512))]:
        assert engine_cache_key(**{**base, field: other}) != key, field


@needs_cuda
@needs_shared
def test_compiled_cuda_graph_fp16_psnr(face128, golden):
    cfg = EngineConfig(backend="compiled", precision="fp16", device="cuda")
    engine = make_engine(face128, cfg)
    assert engine.cuda_graph is None, "the engine captures only when run on its own, not at start-up"
    ref = face128.synthesize(golden["w_plus"][:1])
    for i in range(2):
        out = engine.run(golden["w_plus"][i:i + 1].cuda()).float().cpu()
        assert psnr(out, face128.synthesize(golden["w_plus"][i:i + 1])) >= 40
    assert engine.cuda_graph is not None, "run on its own, the engine replays its own CUDA graph"
    assert psnr(engine.run(golden["w_plus"][:1].cuda()).float().cpu(), ref) >= 40
