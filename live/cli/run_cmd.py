"""`live run` (the real-time loop) and `live generate` (images from seeds)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from loguru import logger

from live.cli.arguments import add_command
from live.options import option
from models.atomic_files import write_text_atomic

RUN_DESCRIPTION = (
    "The real-time loop: capture -> face tracking -> parameters -> One-Euro smoothing -> delta_p -> the "
    "avatar's renderer (StyleGAN2: delta_w = A delta_p, then synthesis; or the mesh warp of a photo) -> sinks "
    "(virtual camera, preview window, file, null). Relative mode (default) copies your motion onto the "
    "avatar's own resting pose; --absolute gives it your pose. Every option below is also a config key "
    "(`live config show`). Without --avatar it animates the bundled demo painting with the mesh warp (with "
    "--generator: a random face of that generator, with demo directions unless -d is given), and without a "
    "camera a synthetic motion: the whole loop runs, and says so.")


@dataclass
class RunCommand:
    stats: str | None = option(None, "also write the run's statistics (per stage, per frame) to this JSON file",
                               metavar="JSON")


@dataclass
class GenerateCommand:
    out: str = option(help="output image (PNG or JPEG)", flags=("-o",), metavar="PNG")
    seeds: str = option("0-7", "seeds: a range like 0-7 or a list like 1,5,9")
    noise: str = option("const", "noise mode", choices=("const", "random", "none"))


def register(sub) -> None:
    add_command(sub, "run", run_command, "drive an avatar with your face, live: camera -> avatar -> virtual camera",
                RunCommand, sections=("run", "generator", "engine", "tracking", "smoothing"),
                description=RUN_DESCRIPTION)
    add_command(sub, "generate", generate_command, "draw images from random seeds", GenerateCommand,
                sections=("generator", "engine"),
                description="Synthesise one image per seed and save them as a grid (PNG).")


def run_command(opts: RunCommand, cfg) -> int:
    from live.pipeline.loop import run
    report = run(cfg, record_frames=bool(opts.stats))
    if opts.stats:
        write_text_atomic(opts.stats, json.dumps({**report.as_dict(), "per_frame": report.per_frame}, indent=1))
    return 0


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.partition("-")
        try:
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
        except ValueError:
            raise ValueError(f"bad seeds {text!r}: use a range like 0-7 or a list like 1,5,9") from None
    return seeds


def generate_command(opts: GenerateCommand, cfg) -> int:
    import numpy as np
    import torch

    from live.engines.devices import resolve_device
    from models.atomic_files import write_image_atomic as write_image
    from live.pipeline.scene import generator_from_config
    from models.images import image_grid, to_uint8_rgb
    seeds = parse_seeds(opts.seeds)
    device = resolve_device(cfg.engine.device)
    G = generator_from_config(cfg.generator, device)
    z = torch.stack([torch.from_numpy(np.random.RandomState(s).randn(G.style_dim)).float() for s in seeds]).to(device)
    with torch.no_grad():
        images = G.synthesize(G.mapping(z, cfg.generator.truncation), noise_mode=opts.noise)
    write_image(opts.out, image_grid(to_uint8_rgb(images)))
    logger.info("wrote {} images ({} px) to {}", len(seeds), G.resolution, opts.out)
    return 0
