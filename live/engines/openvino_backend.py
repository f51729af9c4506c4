"""OpenVINO synthesis (optional extra `live[openvino]`): CPUs, Intel graphics and NPUs.

The static synthesis graph is converted by OpenVINO's own PyTorch front end (no ONNX needed),
saved as IR (.xml + .bin, fp32 weights) in the engine cache under a key of the weights, the
OpenVINO and torch versions and the batch, and compiled for the chosen device with the
precision as a hint: bf16 on CPUs with bf16 instructions, f16 on GPUs, f32 otherwise. The second
start reads the IR (a fraction of a second) instead of converting (seconds); OpenVINO's own
CACHE_DIR keeps compiled blobs too, which matters on GPUs, where compiling kernels takes longest.

Input and output are this engine's torch buffers, handed to OpenVINO as shared memory: no copy
on either side. `infer` releases the GIL, so in `live run` tracking the next frame (its own
thread) overlaps synthesis of this one.
"""

from __future__ import annotations

import copy
import time
import warnings
from pathlib import Path

import torch
from loguru import logger

from live.config import EngineConfig
from live.engines.artifact_cache import (
    KEEP_PER_KIND,
    artifact_key,
    engines_dir,
    prune,
    touch,
)
from live.engines.base import Engine
from live.engines.devices import BackendUnavailable
from live.engines.static_synthesis import StaticSynthesis
from models.atomic_files import atomic_path
from models.checkpoint import weights_hash
from models.errors import first_line
from models.stylegan2 import Generator

INSTALL_HINT = "the openvino backend needs OpenVINO: pip install 'live[openvino]'"
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
IR_LAYOUT = 1   # bump when what is saved changes (names, export dtype)


def import_openvino():
    try:
        import openvino
    except Exception as e:  # ImportError, or a broken install whose libraries fail to load
        raise BackendUnavailable(f"{INSTALL_HINT} (import failed: {e})") from None
    return openvino


def choose_device(requested: str, available: list[str]) -> str:
    """The OpenVINO device to compile for. auto: a GPU where OpenVINO sees one (Intel graphics), else
    the CPU. Virtual devices (AUTO, MULTI:..., HETERO:...) are OpenVINO's to resolve."""
    if requested == "auto":   # ours; "AUTO" in capitals is OpenVINO's virtual device
        return next((d for d in available if d.startswith("GPU")), "CPU")
    name = requested.upper()
    if name == "AUTO" or name.startswith(("AUTO:", "MULTI:", "HETERO:")):
        return name
    if name not in available:
        raise BackendUnavailable(f"OpenVINO device {requested!r} is not available here; OpenVINO sees "
                                 f"{', '.join(available) or 'no device'}. Use one of those, AUTO, or auto. "
                                 "(Intel GPUs need their compute runtime: `live doctor` checks.)")
    return name


def device_capabilities(core, device: str) -> list[str]:
    try:
        return list(core.get_property(device, "OPTIMIZATION_CAPABILITIES"))
    except Exception:  # virtual devices (AUTO, MULTI) have none of their own
        return []


def resolve_device_and_precision(requested_device: str) -> tuple[str, str]:
    """The OpenVINO device, and the precision `auto` means on it: fp16 on GPUs and NPUs, bf16 on
    CPUs with bf16 instructions, fp32 on other CPUs and on virtual devices (valid everywhere)."""
    ov = import_openvino()
    core = ov.Core()
    device = choose_device(requested_device, list(core.available_devices))
    if device.startswith(("GPU", "NPU")):
        return device, "fp16" if "FP16" in device_capabilities(core, device) else "fp32"
    if device == "CPU" and "BF16" in device_capabilities(core, "CPU"):
        return device, "bf16"
    return device, "fp32"


def precision_for(device: str, precision: str, capabilities: list[str]) -> str:
    """The INFERENCE_PRECISION_HINT for the live precision; refuses what the device cannot run
    (the plugin would otherwise fall back silently and the figures would lie)."""
    needs = {"bf16": "BF16", "fp16": "FP16"}.get(precision)
    if needs and needs not in capabilities and not device.startswith(("AUTO", "MULTI", "HETERO")):
        raise BackendUnavailable(f"OpenVINO's {device} plugin has no {precision} here (it offers "
                                 f"{', '.join(capabilities)}); use --precision fp32 or auto")
    return PRECISION_HINTS[precision]


def convert_synthesis(G: Generator, batch: int = 1):
    """The static synthesis graph as an OpenVINO model (fp32), W+ [batch, n_latent, S] -> image."""
    ov = import_openvino()
    module = StaticSynthesis(copy.deepcopy(G.synthesis).cpu().float()).eval().requires_grad_(False)
    example = torch.zeros(batch, G.n_latent, G.style_dim)
    # Tracing warns about our shape asserts (they hold: the shape is fixed); not for users' eyes.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # A static input shape: the plugin plans every buffer once (and the cache checks it on reading).
        model = ov.convert_model(module, example_input=(example,), input=[list(example.shape)])
    model.inputs[0].get_tensor().set_names({"w_plus"})
    model.outputs[0].get_tensor().set_names({"image"})
    return model


def save_ir(model, xml: Path, fp16_weights: bool = False) -> Path:
    """Save as IR, weights fp32 unless asked (OpenVINO's default halves them, and fp32 engines lose
    their exactness), atomically: the .bin first, the .xml (what is looked for) last."""
    ov = import_openvino()
    with atomic_path(xml, companions=(".bin",)) as tmp:    # the .bin renamed first, the .xml last
        ov.save_model(model, str(tmp), compress_to_fp16=fp16_weights)
    return xml


class OpenVINOEngine(Engine):
    name = "openvino"

    def __init__(self, G: Generator, cfg: EngineConfig):
        super().__init__(G, cfg)
        ov = import_openvino()
        if self.device.type != "cpu":
            raise BackendUnavailable("the openvino backend keeps its buffers on the host: give --device cpu "
                                     "(OpenVINO's own device is --openvino-device)")
        start = time.perf_counter()
        self.dtype = torch.float32                      # the graph's input; precision is a compile hint
        self.static_in = torch.zeros(self.input_shape, dtype=self.dtype)
        self.static_out = torch.empty(self.output_shape, dtype=torch.float32)
        core = ov.Core()
        self.ov_device = choose_device(cfg.openvino_device, list(core.available_devices))
        folder = engines_dir(cfg.cache_dir)
        key = artifact_key({"weights": weights_hash(G), "openvino": ov.__version__, "torch": torch.__version__,
                            "batch": self.batch, "layout": IR_LAYOUT})
        model = self._read_or_convert(core, G, folder / f"openvino-{key}.xml")
        capabilities = device_capabilities(core, self.ov_device)
        config = {"INFERENCE_PRECISION_HINT": precision_for(self.ov_device, cfg.precision, capabilities),
                  "PERFORMANCE_HINT": "LATENCY", "CACHE_DIR": str(folder / "openvino-compiled")}
        if cfg.threads > 0 and self.ov_device == "CPU":
            config["INFERENCE_NUM_THREADS"] = int(cfg.threads)
        try:
            self.compiled = core.compile_model(model, self.ov_device, config)
        except Exception as e:   # a device plugin that fails (GPU drivers): let `auto` try the next backend
            raise BackendUnavailable(f"OpenVINO could not compile for {self.ov_device}: "
                                     f"{first_line(e)}; try --openvino-device CPU") from e
        self.threads = self._threads_used()
        prune(folder / "openvino-compiled", "", ".blob", keep=4 * KEEP_PER_KIND)   # OpenVINO's own cache: one blob per model and device
        self.request = self.compiled.create_infer_request()
        # Our buffers are the request's: OpenVINO reads static_in and writes static_out in place.
        self.request.set_input_tensor(ov.Tensor(self.static_in.numpy(), shared_memory=True))
        self.request.set_output_tensor(ov.Tensor(self.static_out.numpy(), shared_memory=True))
        for _ in range(max(cfg.warmup_iters, 1)):
            self.forward_static()
        self.ready_s = time.perf_counter() - start
        logger.info("openvino engine ready in {:.2f} s ({}, {})", self.ready_s, self.ov_device, cfg.precision)

    def _read_or_convert(self, core, G: Generator, xml: Path):
        if xml.is_file() and xml.with_suffix(".bin").is_file():
            try:
                model = core.read_model(str(xml))
                if list(model.inputs[0].get_partial_shape().to_shape()) != list(self.input_shape):
                    raise ValueError(f"input {model.inputs[0].get_partial_shape()}, not {list(self.input_shape)}")
                touch(xml)
                touch(xml.with_suffix(".bin"))
                self.cache_hit = True
                return model
            except Exception as e:  # a truncated or foreign file: build it again, do not stop the run
                logger.warning("cached OpenVINO model {} is unusable ({}); converting again", xml.name, e)
        logger.info("converting the synthesis graph for OpenVINO (once per set of weights)")
        self.cache_hit = False
        try:
            model = convert_synthesis(G, self.batch)
        except Exception as e:   # a front end that does not take our graph: let `auto` try the next backend
            raise BackendUnavailable(f"OpenVINO could not convert the synthesis graph: {first_line(e)} "
                                     "(pip install -U 'live[openvino]' may help)") from e
        save_ir(model, xml)
        prune(xml.parent, "openvino-", ".xml")
        return model

    def _threads_used(self) -> int:
        """What the plugin runs with (0 given: its own default, every physical core); 0 where not a CPU."""
        try:
            return int(self.compiled.get_property("INFERENCE_NUM_THREADS")) if self.ov_device == "CPU" else 0
        except Exception:
            return 0

    def forward_static(self) -> torch.Tensor:
        self.request.infer()
        return self.static_out

    def describe(self) -> str:
        threads = f", {self.threads} thread{'s' * (self.threads != 1)}" if self.threads else ""
        return f"openvino engine on {self.ov_device}, {self.cfg.precision}{threads}, batch {self.batch}, {self.resolution}px"
