"""`live run`: the frame loop.

What runs today: latent motion -> synthesis engine -> post-process -> sinks, with per-stage
timing. The motion is a smooth tour through the generator's latent space; driving it from
the user's face (capture, tracking, directions, avatars: issues #3-#6) replaces that source.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict

import torch
from loguru import logger

from live.config import LiveConfig
from live.engine import make_engine
from live.generator import generator_from_config
from live.postprocess import to_uint8_rgb
from live.sinks import make_sink
from live.stats import LatencyStats


class LatentTour:
    """Smoothly eases between mapped random codes, one new code every `period` frames."""

    def __init__(self, G, truncation: float, period: int = 50, seed: int = 0):
        self.G, self.psi, self.period = G, truncation, period
        self.gen = torch.Generator().manual_seed(seed)
        self.a, self.b = self._code(), self._code()

    @torch.no_grad()
    def _code(self) -> torch.Tensor:
        z = torch.randn(1, self.G.style_dim, generator=self.gen).to(self.G.w_avg.device)
        return self.G.broadcast(self.G.mapping(z, self.psi))

    def __call__(self, frame: int) -> torch.Tensor:
        phase = frame % self.period
        if phase == 0 and frame > 0:
            self.a, self.b = self.b, self._code()
        t = 0.5 - 0.5 * math.cos(math.pi * phase / self.period)
        return torch.lerp(self.a, self.b, t)


def run(cfg: LiveConfig) -> dict:
    G = generator_from_config(cfg.generator)
    engine = make_engine(G, cfg.engine)
    logger.info("synthesis: {}", engine.describe())
    logger.info("motion source: latent tour (webcam driving arrives with face tracking and avatars)")
    sinks = [make_sink(spec, cfg.run.fps) for spec in cfg.run.sinks]
    tour = LatentTour(G, cfg.generator.truncation)
    timings: dict[str, list[float]] = defaultdict(list)
    frame = 0
    start = time.perf_counter()
    try:
        while cfg.run.frames <= 0 or frame < cfg.run.frames:
            t0 = time.perf_counter()
            w_plus = tour(frame).to(engine.device)
            t1 = time.perf_counter()
            image = engine.run(w_plus)
            rgb = to_uint8_rgb(image)[0]  # the copy to the host synchronises the device
            t2 = time.perf_counter()
            for sink in sinks:
                sink.write(rgb)
            t3 = time.perf_counter()
            for name, a, b in (("latent", t0, t1), ("synthesis+post", t1, t2), ("sinks", t2, t3), ("frame", t0, t3)):
                timings[name].append((b - a) * 1e3)
            frame += 1
    except KeyboardInterrupt:
        logger.info("stopped by the user")
    finally:
        for sink in sinks:
            sink.close()
    elapsed = time.perf_counter() - start
    report = {"frames": frame, "seconds": elapsed, "fps": frame / elapsed if elapsed else 0.0,
              "stages": {k: LatencyStats.from_ms(v).__dict__ for k, v in timings.items() if v}}
    for name, s in report["stages"].items():
        logger.info("{:<15} median {:7.2f} ms   p99 {:7.2f} ms", name, s["median_ms"], s["p99_ms"])
    logger.info("{} frames in {:.1f} s: {:.1f} fps", frame, elapsed, report["fps"])
    return report
