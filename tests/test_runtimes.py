"""The OpenVINO and ONNX Runtime backends: exact where they should be, cached, and clear when they cannot run.

Only their CPU paths run here; the choices that depend on other hardware (providers, OpenVINO
devices) are pure functions, tested with the lists a Windows, Mac or NVIDIA install reports.
"""

import sys

import pytest
import torch

from live.config import EngineConfig
from live.engines import BackendUnavailable, make_engine
from live.engines.artifact_cache import prune
from live.engines.factory import auto_backend, installed, resolve_engine_config
from live.engines.onnxruntime_backend import choose_providers, default_precision, torch_device_for
from live.engines.openvino_backend import choose_device, precision_for
from models.image_metrics import psnr
from tests.conftest import needs_shared

needs_openvino = pytest.mark.skipif(not installed("openvino"), reason="openvino not installed (pip install 'live[openvino]')")
needs_onnxruntime = pytest.mark.skipif(not installed("onnxruntime"), reason="onnxruntime not installed "
                                                                            "(pip install 'live[onnx]')")


@pytest.fixture(scope="module")
def fixture_and_reference(face128):
    G = face128
    w = G.truncate(G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(3)))),
                   0.7)
    with torch.no_grad():
        ref = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu")).run(w).clone()
    return G, w, ref


def cpu_has_ov_bf16() -> bool:
    if not installed("openvino"):
        return False
    import openvino
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


# -- exactness ---------------------------------------------------------------------------------------
@needs_shared
@needs_openvino
def test_openvino_matches_eager(fixture_and_reference, tmp_path):
    G, w, ref = fixture_and_reference
    fp32 = make_engine(G, EngineConfig(backend="openvino", precision="fp32", openvino_device="CPU",
                                       cache_dir=str(tmp_path)))
    out = fp32.run(w)
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert psnr(out, ref, 2.0) > 100     # measured 130 dB: the same graph in fp32
    if cpu_has_ov_bf16():
        bf16 = make_engine(G, EngineConfig(backend="openvino", precision="bf16", openvino_device="CPU",
                                           cache_dir=str(tmp_path)))
        assert bf16.cache_hit                 # the IR is per weights, not per precision
        assert 45 < psnr(bf16.run(w), ref, 2.0) < 100   # measured 53.5 dB; not fp32 in disguise


@needs_shared
@needs_onnxruntime
def test_onnxruntime_matches_eager(fixture_and_reference, tmp_path):
    G, w, ref = fixture_and_reference
    engine = make_engine(G, EngineConfig(backend="onnxruntime", providers=["cpu"], cache_dir=str(tmp_path)))
    assert engine.cfg.precision == "fp32" and engine.providers == ["CPUExecutionProvider"]
    out = engine.run(w).clone()          # the engine's output buffer: the next run overwrites it
    assert psnr(out, ref, 2.0) > 100     # measured 136 dB
    w2 = w + 0.3 * torch.randn_like(w)   # the bound input buffer is read again every run
    assert psnr(engine.run(w2), out, 2.0) < 40


@pytest.mark.slow
@needs_openvino
@needs_onnxruntime
def test_paper_architecture_exact_on_both(tmp_path):
    """The paper's 256 px architecture (random weights: the trained ones cannot be fetched here)."""
    from models import STANDARD_ARCHS, random_generator
    G = random_generator(STANDARD_ARCHS["vox256"])
    codes = [G.truncate(G.broadcast(G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(s)))),
                        0.7) for s in range(4)]
    eager = make_engine(G, EngineConfig(backend="eager", precision="fp32", device="cpu"))
    refs = [eager.run(w).clone() for w in codes]
    for backend in ("openvino", "onnxruntime"):
        engine = make_engine(G, EngineConfig(backend=backend, precision="fp32", openvino_device="CPU",
                                             providers=["cpu"], cache_dir=str(tmp_path)))
        assert psnr(engine.run(codes[0]), refs[0], 2.0) > 60, backend   # measured 111 and 117 dB
    if cpu_has_ov_bf16():
        # bf16 on an untrained network spreads widely with the code (OpenVINO 34.6-40.8 dB over these four, torch's
        # own autocast 36.8-40.1; the trained fixture: 53.5 dB, test above). So: no worse than PyTorch's own bf16
        # on the same network and codes (measured 38.4 vs 38.2 dB on average), and not fp32 in disguise.
        ov_bf16 = make_engine(G, EngineConfig(backend="openvino", precision="bf16", openvino_device="CPU",
                                              cache_dir=str(tmp_path)))
        torch_bf16 = make_engine(G, EngineConfig(backend="eager", precision="bf16", device="cpu"))
        ov_db = sum(psnr(ov_bf16.run(w), r, 2.0) for w, r in zip(codes, refs)) / len(codes)
        torch_db = sum(psnr(torch_bf16.run(w), r, 2.0) for w, r in zip(codes, refs)) / len(codes)
        assert torch_db - 1 < ov_db < 60, (ov_db, torch_db)


# -- the cache ---------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_shared
@needs_openvino
def test_openvino_cache_reused_and_rebuilt_when_unusable(fixture_and_reference, tmp_path):
    G, w, ref = fixture_and_reference
    cfg = EngineConfig(backend="openvino", precision="fp32", openvino_device="CPU", cache_dir=str(tmp_path))
    first = make_engine(G, cfg)
    xml = next(tmp_path.glob("openvino-*.xml"))
    assert not first.cache_hit and xml.with_suffix(".bin").is_file()
    assert make_engine(G, cfg).cache_hit
    xml.write_text("<net>cut short")      # a crash mid-write by an older release, or disk trouble
    again = make_engine(G, cfg)
    assert not again.cache_hit and psnr(again.run(w), ref, 2.0) > 100


@pytest.mark.slow
@needs_shared
@needs_openvino
def test_openvino_cache_of_another_version_is_not_read(fixture_and_reference, tmp_path, monkeypatch):
    import openvino
    G, w, ref = fixture_and_reference
    cfg = EngineConfig(backend="openvino", precision="fp32", openvino_device="CPU", cache_dir=str(tmp_path))
    monkeypatch.setattr(openvino, "__version__", "2023.0.0-old")
    make_engine(G, cfg)
    monkeypatch.undo()
    engine = make_engine(G, cfg)
    assert not engine.cache_hit and len(list(tmp_path.glob("openvino-*.xml"))) == 2
    assert psnr(engine.run(w), ref, 2.0) > 100


@pytest.mark.slow
@needs_shared
@needs_onnxruntime
def test_onnxruntime_cache_reused_and_rebuilt_when_truncated(fixture_and_reference, tmp_path):
    G, w, ref = fixture_and_reference
    cfg = EngineConfig(backend="onnxruntime", providers=["cpu"], cache_dir=str(tmp_path))
    assert not make_engine(G, cfg).cache_hit
    path = next(tmp_path.glob("onnx-*.onnx"))
    assert make_engine(G, cfg).cache_hit
    path.write_bytes(path.read_bytes()[:1000])
    again = make_engine(G, cfg)
    assert not again.cache_hit and psnr(again.run(w), ref, 2.0) > 100


def test_prune_keeps_the_most_recently_used(tmp_path):
    import os
    for i in range(5):
        for suffix in (".xml", ".bin"):
            p = tmp_path / f"openvino-{i}{suffix}"
            p.write_text("x")
            os.utime(p, (1000 + i, 1000 + i))
    (tmp_path / "onnx-9.onnx").write_text("other kind")
    removed = prune(tmp_path, "openvino-", ".xml", keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["onnx-9.onnx", "openvino-3.bin", "openvino-3.xml",
                                                          "openvino-4.bin", "openvino-4.xml"]
    assert len(removed) == 6


# -- choices, with what other machines report -----------------------------------------------------------
WINDOWS_DML = ["DmlExecutionProvider", "CPUExecutionProvider"]
NVIDIA = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
MAC = ["CoreMLExecutionProvider", "AzureExecutionProvider", "CPUExecutionProvider"]


def test_providers_auto_fastest_first_cpu_last():
    assert choose_providers(["auto"], WINDOWS_DML) == WINDOWS_DML
    # TensorRT builds for minutes per set of weights: used when named, not by auto
    assert choose_providers(["auto"], list(reversed(NVIDIA))) == NVIDIA[1:]
    assert choose_providers(["tensorrt"], NVIDIA) == ["TensorrtExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["auto"], MAC) == ["CoreMLExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers([], ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_providers_named_short_or_full():
    assert choose_providers(["cuda"], NVIDIA) == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["cpu", "dml"], WINDOWS_DML) == ["DmlExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["CoreMLExecutionProvider"], MAC)[0] == "CoreMLExecutionProvider"


def test_providers_unknown_or_missing_say_what_to_do():
    with pytest.raises(ValueError, match="unknown onnxruntime provider 'vulkan'.*known: tensorrt, cuda"):
        choose_providers(["vulkan"], WINDOWS_DML)
    with pytest.raises(BackendUnavailable, match="CUDAExecutionProvider is not in this onnxruntime.*onnxruntime-gpu"):
        choose_providers(["cuda"], WINDOWS_DML)
    with pytest.raises(BackendUnavailable, match="onnxruntime-directml"):
        choose_providers(["dml"], MAC)


def test_provider_decides_device_and_precision():
    assert default_precision(NVIDIA) == "fp16" and default_precision(WINDOWS_DML) == "fp16"
    assert default_precision(MAC) == "fp32" and default_precision(["CPUExecutionProvider"]) == "fp32"
    # the CUDA providers bind torch's CUDA tensors; without CUDA in torch, the host
    assert torch_device_for(NVIDIA) == ("cuda" if torch.cuda.is_available() else "cpu")
    assert torch_device_for(WINDOWS_DML) == "cpu"


def test_openvino_device_choice():
    assert choose_device("auto", ["CPU", "GPU.0", "GPU.1", "NPU"]) == "GPU.0"
    assert choose_device("auto", ["CPU"]) == "CPU"
    assert choose_device("gpu.1", ["CPU", "GPU.0", "GPU.1"]) == "GPU.1"
    assert choose_device("AUTO", ["CPU"]) == "AUTO" and choose_device("MULTI:GPU,CPU", ["CPU"]) == "MULTI:GPU,CPU"
    with pytest.raises(BackendUnavailable, match="OpenVINO device 'NPU' is not available here; OpenVINO sees CPU"):
        choose_device("NPU", ["CPU"])


def test_openvino_precision_refused_where_the_device_lacks_it():
    assert precision_for("CPU", "bf16", ["FP32", "BF16", "INT8"]) == "bf16"
    assert precision_for("GPU", "fp16", ["FP32", "FP16"]) == "f16"
    assert precision_for("AUTO", "fp16", []) == "f16"       # AUTO decides per device
    with pytest.raises(BackendUnavailable, match="no bf16 here.*--precision fp32"):
        precision_for("CPU", "bf16", ["FP32", "INT8"])


@needs_onnxruntime
def test_onnxruntime_cpu_refuses_low_precision():
    from models import STANDARD_ARCHS, random_generator
    G = random_generator(STANDARD_ARCHS["fixture128"])
    for precision in ("bf16", "fp16"):
        with pytest.raises(BackendUnavailable, match="--backend openvino for bf16"):
            make_engine(G, EngineConfig(backend="onnxruntime", precision=precision, providers=["cpu"]))


# -- not installed, and auto ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend,module,extra", [("openvino", "openvino", "live\\[openvino\\]"),
                                                  ("onnxruntime", "onnxruntime", "live\\[onnx\\]")])
def test_missing_runtime_names_its_extra(monkeypatch, backend, module, extra):
    from models import STANDARD_ARCHS, random_generator
    monkeypatch.setitem(sys.modules, module, None)     # import fails as if it were not installed
    monkeypatch.setattr("live.engines.factory.installed", lambda b: True)
    monkeypatch.setattr("live.engines.factory.missing_modules", lambda b: [])   # the engine's own import check
    with pytest.raises(BackendUnavailable, match=extra):
        make_engine(random_generator(STANDARD_ARCHS["fixture128"]), EngineConfig(backend=backend, precision="fp32"))


@pytest.mark.parametrize("backend,missing,extra", [("onnxruntime", "onnxscript", "live\\[onnx\\]"),
                                                   ("openvino", "openvino", "live\\[openvino\\]")])
def test_backend_named_without_its_modules_says_what_to_install(monkeypatch, backend, missing, extra):
    """Before any precision or device question: onnxruntime present without its exporter once answered a bf16
    CPU's `--precision auto` with "use --precision fp32"."""
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == missing else real(name, *a))
    with pytest.raises(BackendUnavailable, match=f"needs {missing}: pip install '{extra}'"):
        resolve_engine_config(EngineConfig(backend=backend, device="cpu"))


def test_auto_takes_the_first_installed(monkeypatch):
    present = {"openvino", "onnxruntime", "eager", "compiled"}
    monkeypatch.setattr("live.engines.factory.installed", lambda b: b in present)
    assert auto_backend("cpu") == "openvino" and auto_backend("cuda") == "compiled"
    present.discard("openvino")
    assert auto_backend("cpu") == "onnxruntime"
    present.discard("onnxruntime")
    assert auto_backend("cpu") == "eager"
    cfg = resolve_engine_config(EngineConfig(device="cpu"))
    assert cfg.backend == "eager"


def test_auto_passes_over_a_backend_that_cannot_run(monkeypatch):
    """An installed but broken runtime (libraries that do not load) must not stop `live run`."""
    from live.engines import factory
    from models import STANDARD_ARCHS, random_generator

    class Broken:
        def __init__(self, G, cfg):
            raise BackendUnavailable("its libraries did not load")

    monkeypatch.setattr(factory, "installed", lambda b: b in ("openvino", "eager"))
    monkeypatch.setitem(factory.BACKENDS, "openvino", Broken)
    monkeypatch.setattr(factory, "resolve_engine_config", lambda cfg: cfg if cfg.backend != "eager" else
                        EngineConfig(backend="eager", precision="fp32", device="cpu"))
    engine = make_engine(random_generator(STANDARD_ARCHS["fixture128"]), EngineConfig(device="cpu"))
    assert engine.name == "eager"
    monkeypatch.setitem(factory.BACKENDS, "eager", Broken)
    with pytest.raises(BackendUnavailable, match="no synthesis backend could run: openvino: its libraries"):
        make_engine(random_generator(STANDARD_ARCHS["fixture128"]), EngineConfig(device="cpu"))


@needs_onnxruntime
def test_onnxruntime_provider_that_does_not_start_is_an_error(monkeypatch, tmp_path):
    """onnxruntime drops a provider it cannot load and runs on the CPU without a word; we say so."""
    import onnxruntime

    from models import STANDARD_ARCHS, random_generator
    monkeypatch.setattr(onnxruntime, "get_available_providers",
                        lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    # What a session reports when CUDA's libraries did not load, on any machine (also one where they would).
    monkeypatch.setattr(onnxruntime.InferenceSession, "get_providers", lambda self: ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailable, match="could not start CUDAExecutionProvider.*--providers cpu"):
        make_engine(random_generator(STANDARD_ARCHS["fixture128"]),
                    EngineConfig(backend="onnxruntime", precision="fp32", device="cpu", cache_dir=str(tmp_path)))


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be auto or one of"):
        resolve_engine_config(EngineConfig(backend="vulkan"))


# -- the command line ------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_shared
@needs_openvino
@needs_onnxruntime
def test_models_export_both_formats_run_outside_live(fixture_and_reference, fixture_path, tmp_path, capsys):
    import json

    import numpy as np
    import onnxruntime
    import openvino

    from live.cli import main
    G, w, ref = fixture_and_reference
    assert main(["models", "export", str(fixture_path), "-o", str(tmp_path / "onnx")]) == 0
    assert main(["models", "export", str(fixture_path), "--format", "openvino", "-o", str(tmp_path / "ov")]) == 0
    info = json.loads((tmp_path / "onnx" / "synthesis.json").read_text())
    assert info["input"] == {"name": "w_plus", "shape": [1, 12, 512]} and len(info["w_avg"]) == 512
    session = onnxruntime.InferenceSession(str(tmp_path / "onnx" / "synthesis.onnx"))
    out = session.run(["image"], {"w_plus": w.numpy()})[0]
    assert psnr(torch.from_numpy(out), ref, 2.0) > 100
    compiled = openvino.Core().compile_model(str(tmp_path / "ov" / "synthesis.xml"), "CPU",
                                             {"INFERENCE_PRECISION_HINT": "f32"})
    out = compiled({"w_plus": w.numpy()})["image"]
    assert psnr(torch.from_numpy(np.asarray(out)), ref, 2.0) > 100
    assert "synthesis.bin" in capsys.readouterr().out


@needs_openvino
def test_live_run_on_openvino(tmp_path):
    from live.cli import main
    out = tmp_path / "o.mp4"
    assert main(["run", "-g", "random", "--arch", "fixture128", "--frames", "3", "--sink", f"file:{out}",
                 "--backend", "openvino", "--openvino-device", "CPU", "--size", "64x64"]) == 0
    assert out.stat().st_size > 0
