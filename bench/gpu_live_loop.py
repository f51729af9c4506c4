"""The live-loop item of `python -m bench gpu`: `live run` as users run it on the GPU, its frames checked.

Bounds, and why: every sampled frame is not constant (pixel standard deviation >= 10 grey levels), not
black or white (mean 10-245), and the picture the CPU draws: it is re-rendered on the host (eager fp32,
the same scene and settings, the change it was rendered with) and must match with PSNR >= 30 dB. fp16
against fp32 measures 69-72 dB on the fixture; rounding to 8 bits and resizing lose a little more; a
wrong buffer, a stale frame, noise or another face lands under 20 dB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.gpu_items import ItemFailed, recorded_input, save_partial
from models.image_metrics import psnr

FRAME_PSNR_DB = 30.0


def live_loop(ctx) -> dict:
    """`live run --avatar` on the avatar the previous item made on the GPU (compiled fp16, the frame graph),
    paced by the recorded driver track, frames checked against the CPU; then the paper's 256 px architecture."""
    avatar = Path(ctx.out) / "avatar.pt"
    if not avatar.is_file():
        raise RuntimeError(f"{avatar} is missing: the avatar creation item did not make it (see its result)")
    driver = recorded_input(ctx, "driver.csv")
    frames, size = (60, "64x64") if ctx.dry else (600, "512x512")   # the dry run too goes past the rest second
    backend, precision = ("eager", "fp32") if ctx.dry else ("compiled", "fp16")
    figures, problems = {}, []
    for label, scene in (("fixture avatar", {"run.avatar": str(avatar)}),
                         ("vox256 (random weights)", {"generator.path": "random", "generator.arch": "vox256"})):
        if ctx.dry and label != "fixture avatar":
            continue
        cfg, report, samples = _run_loop(ctx, scene, driver, frames, size, backend, precision)
        figures[label] = _loop_figures(report)
        if not ctx.dry and "CUDA graph" not in report.engine:
            problems.append(f"{label}: the frame was not captured as one CUDA graph ({report.engine})")
        problems += [f"{label}: {p}" for p in frame_problems(samples, reference_renderer(cfg), report.written, frames)]
        save_partial(ctx, figures)
    if problems:
        raise ItemFailed("; ".join(problems), figures)
    return figures


def _run_loop(ctx, scene: dict, driver: Path, frames: int, size: str, backend: str, precision: str):
    from live.config_files import load_config
    from live.pipeline.loop import run as run_loop
    from live.pipeline.run_report import FrameSamples
    w, _, h = size.partition("x")
    cfg = load_config(overrides={**scene, "engine.backend": backend, "engine.precision": precision,
                                 "engine.device": "cpu" if ctx.dry else "cuda", "run.source": str(driver),
                                 "run.frames": frames, "run.loop": True, "run.sinks": ["null"],
                                 "run.output_size": [w, h], "run.stats_every_s": 0})
    samples = FrameSamples(every=max(frames // 24, 1), limit=32)
    return cfg, run_loop(cfg, record_frames=True, sample_frames=samples), samples


def _loop_figures(report) -> dict:
    return {"engine": report.engine, "fps": round(report.fps, 1), "written": report.written,
            "dropped": report.dropped, "render_median_ms": round(report.stages["render"]["median_ms"], 2),
            "added_latency_ms": {k: round(report.stages["added"][k], 1) for k in ("median_ms", "p99_ms")}}


def reference_renderer(cfg):
    """What the CPU draws for a change, with the run's scene and settings: eager fp32 on the host."""
    import dataclasses

    import torch

    from live.config import EngineConfig
    from live.pipeline.render import make_renderer
    from live.pipeline.scene import build_scene
    scene = build_scene(cfg, "cpu")
    out_size = (int(cfg.run.output_size[0]), int(cfg.run.output_size[1]))
    engine_cfg = dataclasses.replace(EngineConfig(), backend="eager", precision="fp32", device="cpu")
    renderer, _ = make_renderer(scene, engine_cfg, out_size, cfg.generator.truncation, cfg.run.strength,
                                cfg.run.latent_smoothing)

    def render(delta: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return renderer(delta)
    return render


def frame_problems(samples, reference, written: int, asked: int) -> list[str]:
    """What is wrong with the delivered frames (module doc: the bounds), as messages; [] when nothing is."""
    problems = [] if written == asked else [f"{written} frames delivered of {asked}"]
    if not samples.frames:
        return problems + ["no frame was delivered"]
    for (n, frame), delta in zip(samples.frames, samples.deltas):
        if frame.std() < 10 or not 10 <= frame.mean() <= 245:
            problems.append(f"frame {n} is blank (mean {frame.mean():.0f}, std {frame.std():.1f})")
            continue
        if (db := psnr(frame, reference(delta), data_range=255.0)) < FRAME_PSNR_DB:
            problems.append(f"frame {n} is {db:.1f} dB from what the CPU draws for its change (< {FRAME_PSNR_DB} dB)")
    return problems
