"""Reading and writing generator weights.

Two formats are read, decided by the file's content, not its name:
- the reference PyTorch trainer's checkpoint (the paper's generators): a torch zip file
  holding a dict with `g_ema` (state dict), `args` (argparse.Namespace), optionally
  `latent_avg`, `g`, `d` and optimiser states; a bare `g_ema` state dict is accepted too;
- our safetensors export (`live models convert`): flat tensors in the reference key
  layout plus `latent_avg`, and the architecture as JSON metadata. No pickle at all.

The architecture is always inferred from the tensor shapes, never trusted from `args`.
Loading never runs pickled code: `torch.load(weights_only=True)` with only
`argparse.Namespace` allow-listed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import re
from pathlib import Path

import torch
from loguru import logger

from models import weights_io
from models.atomic_files import atomic_path, save_torch_atomic
from models.errors import CheckpointError
from models.nvidia_pkl import (
    G_EMA,
    generator_state,
    is_nvidia_pickle,
    read_network_pickle,
)
from models.stylegan2 import Generator, GeneratorArch
from models.weights_io import safe_safetensors_load, state_mismatch

SAFETENSORS_FORMAT = "live.stylegan2"
SAFETENSORS_VERSION = "1"
EXPECTED = ("a StyleGAN2 generator checkpoint of the reference PyTorch trainer (a dict with 'g_ema', "
            "'args' and optionally 'latent_avg'), a safetensors file written by `live models convert`, "
            "or an NVIDIA StyleGAN2-ADA network pickle")


def detect_format(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if head[:2] == b"PK":
        return "torch-zip"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    if head[:1] == b"\x80":
        return "legacy-pickle"
    return "unknown"


def safe_torch_load(path: Path, mmap: bool = False) -> object:
    """A reference-format torch file (argparse.Namespace allowed in `args`), loaded without running code."""
    return weights_io.safe_torch_load(path, CheckpointError, EXPECTED, allowed=(argparse.Namespace,), mmap=mmap)


def read_reference_state(path: str | Path) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Return (g_ema state dict in reference keys, latent_avg or None) from either format."""
    state, latent_avg, _ = _read_generator_file(Path(path))
    return state, latent_avg


def _read_generator_file(path: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, float | None]:
    """(state in reference keys, latent_avg or None, conv_clamp or None) from any supported format."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file. Expected {EXPECTED}.")
    fmt = detect_format(path)
    if fmt == "safetensors":
        return _read_safetensors(path)
    if fmt == "legacy-pickle" and is_nvidia_pickle(path):
        data = read_network_pickle(path)
        if G_EMA not in data:
            raise CheckpointError(f"{path}: an NVIDIA network pickle without {G_EMA!r} (it holds "
                                  f"{', '.join(map(str, data))})")
        return generator_state(data[G_EMA], source=str(path))
    if fmt == "unknown":
        raise CheckpointError(f"{path}: unrecognised file content. Expected {EXPECTED}.")
    obj = safe_torch_load(path, mmap=(fmt == "torch-zip"))
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a dict. Expected {EXPECTED}.")
    if "g_ema" in obj:
        state, latent_avg = obj["g_ema"], obj.get("latent_avg")
    elif "style.1.weight" in obj and "conv1.conv.weight" in obj:
        state, latent_avg = obj, None  # a bare g_ema state dict
    else:
        keys = ", ".join(list(map(str, obj))[:8])
        raise CheckpointError(f"{path}: no 'g_ema' generator in this file (top-level keys: {keys}). "
                              f"Expected {EXPECTED}.")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: 'g_ema' is not a state dict of tensors. Expected {EXPECTED}.")
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{path}: 'latent_avg' is not a tensor.")
    # Our own reference-format files keep StyleGAN2-ADA's activation clamp in `args` (the
    # reference trainer ignores extra fields); files of that trainer have none.
    clamp = getattr(obj.get("args"), "conv_clamp", None)
    return state, latent_avg, float(clamp) if isinstance(clamp, (int, float)) else None


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], torch.Tensor | None, float | None]:
    state, meta = safe_safetensors_load(path, CheckpointError)
    if meta.get("format") != SAFETENSORS_FORMAT:
        raise CheckpointError(f"{path}: a safetensors file, but not a generator written by `live models convert` "
                              f"(format={meta.get('format')!r}). Expected {EXPECTED}.")
    latent_avg = state.pop("latent_avg", None)
    try:
        clamp = json.loads(meta.get("arch", "{}")).get("conv_clamp")
        clamp = float(clamp) if clamp is not None else None
    except (ValueError, TypeError, AttributeError):
        raise CheckpointError(f"{path}: its architecture metadata is not valid JSON; convert the model again.") from None
    return state, latent_avg, clamp


def infer_arch(state: dict[str, torch.Tensor], source: str = "checkpoint") -> GeneratorArch:
    """Read resolution, channel widths, style dim and mapping depth off the tensor shapes."""
    def need(key: str) -> torch.Tensor:
        if key not in state:
            raise CheckpointError(f"{source}: missing tensor {key!r}; not a StyleGAN2 generator of the "
                                  f"reference layout. Expected {EXPECTED}.")
        return state[key]

    style_dim = need("style.1.weight").shape[1]
    n_mlp = len([k for k in state if re.fullmatch(r"style\.\d+\.weight", k)])
    conv_ids = sorted({int(m.group(1)) for k in state if (m := re.fullmatch(r"convs\.(\d+)\.conv\.weight", k))})
    if not conv_ids or conv_ids != list(range(len(conv_ids))) or len(conv_ids) % 2:
        raise CheckpointError(f"{source}: synthesis convs are not a complete, even sequence ({conv_ids[:6]}...).")
    channels = [need("conv1.conv.weight").shape[1]]
    channels += [need(f"convs.{i}.conv.weight").shape[1] for i in range(0, len(conv_ids), 2)]
    resolution = 4 * 2 ** (len(conv_ids) // 2)
    try:
        return GeneratorArch(resolution=resolution, channels=tuple(int(c) for c in channels),
                             style_dim=int(style_dim), n_mlp=n_mlp)
    except ValueError as e:
        raise CheckpointError(f"{source}: inconsistent architecture: {e}") from None


def to_reference_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our module's state dict -> the reference trainer's `g_ema` key layout."""
    out = {}
    for k, v in state.items():
        if k == "w_avg":
            continue
        out[k.removeprefix("synthesis.")] = v
    return out


def from_reference_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {(k if k.startswith("style.") else "synthesis." + k): v for k, v in state.items()}


def build_from_state(state: dict[str, torch.Tensor], latent_avg: torch.Tensor | None,
                     source: str = "checkpoint", conv_clamp: float | None = None) -> Generator:
    arch = dataclasses.replace(infer_arch(state, source), conv_clamp=conv_clamp)
    G = Generator(arch)
    ours = from_reference_keys(state)
    expected = G.state_dict()
    expected.pop("w_avg")
    mismatch = state_mismatch(expected, ours, name=lambda k: k.removeprefix("synthesis."))
    if mismatch:
        raise CheckpointError(f"{source}: does not match a {arch.resolution}px StyleGAN2 of channels "
                              f"{list(arch.channels)}: {mismatch}.")
    for k, v in ours.items():
        if not torch.isfinite(v).all():
            raise CheckpointError(f"{source}: tensor {k} holds NaN or Inf values; the file is damaged.")
    G.load_state_dict({**ours, "w_avg": torch.zeros(arch.style_dim)}, strict=True)
    G.float()
    if latent_avg is not None:
        if tuple(latent_avg.shape) != (arch.style_dim,):
            raise CheckpointError(f"{source}: latent_avg has shape {list(latent_avg.shape)}, "
                                  f"expected [{arch.style_dim}].")
        G.w_avg.copy_(latent_avg.float())
    else:
        logger.info("{}: no stored latent_avg, estimating w_avg from 10 000 mapped samples", source)
        G.estimate_w_avg()
    return G.eval().requires_grad_(False)


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """Load a generator from a reference checkpoint or our safetensors export, in fp32, in eval mode."""
    state, latent_avg, conv_clamp = _read_generator_file(Path(path))
    G = build_from_state(state, latent_avg, source=str(path), conv_clamp=conv_clamp)
    logger.debug("loaded {}: {} px, channels {}, {} W+ codes", path, G.resolution, list(G.arch.channels), G.n_latent)
    return G.to(device)


def save_safetensors(G: Generator, path: str | Path, extra_meta: dict[str, str] | None = None) -> Path:
    """Write the generator as safetensors: reference key layout, `latent_avg`, architecture metadata."""
    from safetensors.torch import save_file
    state = {k: v.detach().float().contiguous().cpu() for k, v in to_reference_keys(G.state_dict()).items()}
    state["latent_avg"] = G.w_avg.detach().float().cpu().contiguous()
    meta = {"format": SAFETENSORS_FORMAT, "version": SAFETENSORS_VERSION,
            "arch": json.dumps(G.arch.to_dict()), "weights_sha256": weights_hash(G)}
    meta.update(extra_meta or {})
    path = Path(path)
    with atomic_path(path) as tmp:  # never leave a half-written file under the final name
        save_file(state, str(tmp), metadata=meta)
    return path


def weights_hash(G: Generator) -> str:
    """sha256 over the generator's tensors (names, shapes, fp32 bytes): the same for a checkpoint
    and its safetensors conversion, so caches keyed by it survive a format change."""
    h = hashlib.sha256()
    state = to_reference_keys(G.state_dict())
    state["latent_avg"] = G.w_avg
    if G.arch.conv_clamp is not None:  # part of the network; absent for reference checkpoints (hashes unchanged)
        state["arch.conv_clamp"] = torch.tensor([G.arch.conv_clamp])
    for k in sorted(state):
        t = state[k].detach().float().contiguous().cpu()
        h.update(k.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


def random_generator(arch: GeneratorArch, seed: int = 0) -> Generator:
    """A randomly initialised generator of the given architecture (for benchmarks and offline demos)."""
    torch.manual_seed(seed)
    G = Generator(arch)
    G.estimate_w_avg(n=2048, seed=seed)
    return G.eval().requires_grad_(False)


def reference_args(arch: GeneratorArch) -> argparse.Namespace:
    """The `args` entry of a reference-format file. StyleGAN2-ADA's activation clamp rides along as
    an extra field (the reference trainer ignores it; _read_generator_file reads it back)."""
    args = argparse.Namespace(size=arch.resolution, latent=arch.style_dim, n_mlp=arch.n_mlp,
                              channels=list(arch.channels))
    if arch.conv_clamp is not None:
        args.conv_clamp = arch.conv_clamp
    return args


def save_reference_checkpoint(G: Generator, path: str | Path, extra: dict | None = None) -> Path:
    """Write the reference trainer's format: {'g_ema', 'args', 'latent_avg', ...extra}, atomically."""
    ckpt = {"g_ema": {k: v.detach().cpu() for k, v in to_reference_keys(G.state_dict()).items()},
            "args": reference_args(G.arch), "latent_avg": G.w_avg.detach().cpu().clone(), **(extra or {})}
    return save_torch_atomic(ckpt, path)
