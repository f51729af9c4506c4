"""ONNX export of the static synthesis graph (what the onnxruntime backend runs, and `live models
export --format onnx` writes). The exporter is torch's own (torch.export based, opset 18), which
needs the `onnx` and `onnxscript` packages: the `live[onnx]` extra."""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import torch

from models.atomic_files import atomic_path
from live.engines.devices import BackendUnavailable
from live.engines.static_synthesis import StaticSynthesis
from models.errors import first_line
from models.stylegan2 import Generator

OPSET = 18
INPUT_NAME, OUTPUT_NAME = "w_plus", "image"
ONNX_HINT = "ONNX export and the onnxruntime backend need the onnx extra: pip install 'live[onnx]'"


def exporter_versions() -> dict:
    """The versions an exported file depends on (part of the cache key); read from the installed
    packages' metadata, so a cached file is found without importing the exporter."""
    from importlib.metadata import PackageNotFoundError, version
    if tuple(int(x) for x in torch.__version__.split(".")[:2]) < (2, 5):
        raise BackendUnavailable(f"ONNX export needs torch 2.5 or newer (this is {torch.__version__})")
    try:
        return {"torch": torch.__version__, "onnx": version("onnx"), "onnxscript": version("onnxscript"),
                "opset": OPSET}
    except PackageNotFoundError as e:
        raise BackendUnavailable(f"{ONNX_HINT} ({e.name} is not installed)") from None


def import_exporter() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except Exception as e:  # missing, or broken by a protobuf it does not accept
        raise BackendUnavailable(f"{ONNX_HINT} (import failed: {e})") from None


def export_onnx(G: Generator, path: str | Path, batch: int = 1, dtype: torch.dtype = torch.float32) -> Path:
    """Write W+ [batch, n_latent, S] -> image [batch, 3, R, R] (in [-1, 1]) as one ONNX file.
    Written under a temporary name and renamed: an interrupted export leaves no file that looks whole."""
    exporter_versions()
    import_exporter()
    path = Path(path)
    module = StaticSynthesis(copy.deepcopy(G.synthesis).cpu().to(dtype)).eval().requires_grad_(False)
    example = torch.zeros(batch, G.n_latent, G.style_dim, dtype=dtype)
    # The exporter reports its steps on stdout and deprecations as warnings: neither is for our users.
    try:
        with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings(), \
                contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (example,), str(tmp), dynamo=True, opset_version=OPSET, external_data=False,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], verbose=False)
    except Exception as e:   # an exporter that does not take our graph (onnxscript versions): not ours to crash on
        raise BackendUnavailable(f"exporting the synthesis to ONNX failed: {first_line(e)} "
                                 f"(torch {torch.__version__}; pip install -U 'live[onnx]' may help)") from e
    return path
