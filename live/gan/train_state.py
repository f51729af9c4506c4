"""Training state: checkpoints (the reference trainer's format plus ours), networks, optimisers, precision."""

from __future__ import annotations

from pathlib import Path

import torch
from loguru import logger

from live.gan.train_config import TrainConfig
from models.checkpoint import (
    detect_format,
    reference_args,
    safe_torch_load,
    to_reference_keys,
)
from models.discriminator import Discriminator
from models.errors import CheckpointError
from models.stylegan2 import Generator, GeneratorArch
from models.atomic_files import save_torch_atomic
from models.weights_io import state_mismatch


def load_training_checkpoint(path: Path) -> dict | None:
    """The full state when `path` is a training checkpoint (has g and d), else None; anything that is
    not a torch zip file (a missing path, a .pkl, safetensors, garbage) goes to load_generator, whose
    errors name the problem."""
    if not path.is_file() or detect_format(path) != "torch-zip":
        return None
    ckpt = safe_torch_load(path)
    if isinstance(ckpt, dict) and "g" in ckpt and "d" in ckpt and "g_ema" in ckpt:
        return ckpt
    return None


def load_discriminator(state: dict, arch: GeneratorArch, source: str) -> Discriminator:
    D = Discriminator(arch)
    mismatch = state_mismatch(D.state_dict(), state)
    if mismatch:
        raise CheckpointError(f"{source}: its discriminator does not fit a {arch.resolution} px generator of "
                              f"widths {list(arch.channels)}: {mismatch}")
    D.load_state_dict(state)
    return D


def make_optimisers(G: Generator, D: Discriminator, cfg: TrainConfig):
    """Adam with the lazy-regularisation correction: the regulariser runs every k steps, so lr and
    betas are rescaled by k / (k + 1) to keep the effective optimiser the same."""
    g_ratio = cfg.g_reg_every / (cfg.g_reg_every + 1)
    d_ratio = cfg.d_reg_every / (cfg.d_reg_every + 1)
    g_opt = torch.optim.Adam(G.parameters(), lr=cfg.lr * g_ratio, betas=(0.0, 0.99 ** g_ratio), eps=1e-8)
    d_opt = torch.optim.Adam(D.parameters(), lr=cfg.lr * d_ratio, betas=(0.0, 0.99 ** d_ratio), eps=1e-8)
    return g_opt, d_opt


def check_optimiser(opt: torch.optim.Optimizer) -> None:
    """Adam moments must have their parameter's shape: another trainer may order parameters differently,
    and load_state_dict only checks the counts."""
    for group in opt.param_groups:
        for p in group["params"]:
            for name, t in opt.state.get(p, {}).items():
                if isinstance(t, torch.Tensor) and t.ndim and t.shape != p.shape:
                    raise ValueError(f"moment {name} of shape {list(t.shape)} for a parameter of {list(p.shape)}")


def save_training_checkpoint(path: Path, G, D, G_ema, g_opt, d_opt, state: dict) -> None:
    ckpt = {"g": to_reference_keys(G.state_dict()), "d": D.state_dict(), "g_ema": to_reference_keys(G_ema.state_dict()),
            "g_optim": g_opt.state_dict(), "d_optim": d_opt.state_dict(), "args": reference_args(G.arch),
            "latent_avg": G_ema.w_avg.detach().cpu().clone(), "live_train": state}
    save_torch_atomic(_to_cpu(ckpt), path)  # an interrupted save never replaces a good checkpoint


def _to_cpu(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu()
    if isinstance(x, dict):
        return {k: _to_cpu(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_to_cpu(v) for v in x]
    return x


def requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


@torch.no_grad()
def ema_update(G_ema: Generator, G: Generator, beta: float) -> None:
    for pe, p in zip(G_ema.parameters(), G.parameters()):
        pe.lerp_(p.detach(), 1.0 - beta)
    for be, b in zip(G_ema.buffers(), G.buffers()):
        be.copy_(b)


def resolve_amp(setting: str, device: torch.device) -> bool:
    """Whether to train the main passes under bf16 autocast: only on CUDA devices with bf16 (Ampere and
    newer; T4 and V100 have none and would run it emulated or fail)."""
    if setting == "off":
        return False
    bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if setting == "on" and not bf16:
        where = "this GPU has no bfloat16 (it needs Ampere or newer)" if device.type == "cuda" else "it needs a CUDA device"
        raise ValueError(f"--amp on: {where}; use --amp off")
    if setting == "auto" and device.type == "cuda" and not bf16:
        logger.info("this GPU has no bfloat16: training in fp32 (--amp auto)")
    return bf16
