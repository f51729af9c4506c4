"""The render stage: delta_p -> frame, through FrameBody (live/pipeline/frame_body.py).

On CUDA with a capturable engine (compiled) and engine.cuda_graph, the frame body is captured
into one CUDA graph (live/pipeline/frame_graph.py); if that capture fails the body runs as
separate launches on the renderer's stream, with a warning. On the CPU the body runs as is.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from loguru import logger

from live.pipeline.frame_body import FrameBody
from live.pipeline.messages import Motion, Rendered
from live.pipeline.slots import LatestSlot, Stage
from models.errors import first_line


class Renderer:
    """One frame: normalised delta [P] -> HxWx3 uint8 at the output size."""

    def __init__(self, engine, w_s: torch.Tensor, w_avg: torch.Tensor, directions, out_size: tuple[int, int],
                 truncation: float = 1.0, strength: float = 1.0, latent_smoothing: float = 0.0):
        self.engine = engine
        self._body_args = (w_s, w_avg, directions, out_size, truncation, strength, latent_smoothing)
        self.body = FrameBody(engine, *self._body_args)
        self.frame_graph = self._capture() if self.body.device.type == "cuda" else None

    def _capture(self):
        """The frame as one CUDA graph; if the CuPy kernels spoil the capture, the body rebuilt with the
        torch twins and captured again; if that fails too, separate launches per frame."""
        if not (self.engine.capturable and self.engine.cfg.cuda_graph):
            return None
        from live.pipeline import frame_graph
        try:
            return self._captured(frame_graph.FrameGraph(self.body))
        except Exception as e:  # a driver or CuPy that cannot capture
            problem = first_line(e, 200)
        if self.body.impl == "cupy":
            logger.warning("could not capture the frame with the CuPy kernels ({}); rebuilding it with the torch "
                           "kernels", problem)
            self.body = FrameBody(self.engine, *self._body_args, impl="torch")
            try:
                return self._captured(frame_graph.FrameGraph(self.body))
            except Exception as e:
                problem = first_line(e, 200)
        logger.warning("could not capture the frame into one CUDA graph ({}); running blend, synthesis and "
                       "post-process as separate launches", problem)
        return None

    def _captured(self, graph):
        logger.info("frame graph captured: blend, synthesis and post-process replay as one CUDA graph ({} kernels)",
                    self.body.impl)
        return graph

    def __call__(self, delta: np.ndarray, gaze: np.ndarray | None = None, mouth=None) -> np.ndarray:
        """(gaze and mouth are the warp's: the directions have no gaze parameter, and the generator draws its own
        mouth, so neither is drawn here.)"""
        self.body.set_input(delta)
        if self.frame_graph is not None:
            self.frame_graph.replay()
        else:
            self.body.body()
        return self.body.download()

    def warm_up(self) -> None:
        """One frame before the clock starts (compiles, first-call costs); the latent smoothing
        forgets it, so the first real frame is not pulled toward it."""
        self(np.zeros(self.body.dp.shape[0], np.float32))
        self.body.reset()


class WarpFrames:
    """The mesh-warp renderer with its frames letterboxed to the output size, as the GPU path's are. The warp draws
    them at the size they are shown (a 720 px photo in a 512 px output: half the pixels to fill, and read once, not
    drawn large and resized), or smaller where the loop cannot keep up (draw_at)."""

    def __init__(self, warp, out_size: tuple[int, int]):
        self.warp, self.out_size = warp, (int(out_size[0]), int(out_size[1]))
        self.fit = min(self.out_size[0] / warp.w, self.out_size[1] / warp.h, 1.0)
        self.draw_at(1.0)

    def draw_at(self, size: float) -> None:
        """Draw frames with `size` (0..1] of the side they are shown at, scaled up to it
        (live/pipeline/render_budget.py)."""
        self.warp.set_scale(self.fit * size)

    def __call__(self, delta: np.ndarray, gaze: np.ndarray | None = None, mouth=None) -> np.ndarray:
        from live.io.sources import letterbox
        return letterbox(self.warp(delta, gaze, mouth), self.out_size)

    def warm_up(self) -> None:
        self(np.zeros(len(self.warp.space.names)))
        self.warp.warm_up()


def make_renderer(scene, engine_cfg, out_size: tuple[int, int], truncation: float = 1.0, strength: float = 1.0,
                  latent_smoothing: float = 0.0) -> tuple[object, str]:
    """The scene's renderer and a line saying what it runs on."""
    if scene.kind == "warp":
        from live.warp.renderer import WarpRenderer
        return WarpFrames(WarpRenderer(scene.warp, scene.space), out_size), "mesh warp on the CPU"
    from live.engines import make_engine
    engine = make_engine(scene.generator, engine_cfg)
    renderer = Renderer(engine, scene.w_s, scene.generator.w_avg, scene.directions, out_size, truncation, strength,
                        latent_smoothing)
    graph = f"; the frame as one CUDA graph ({renderer.body.impl} kernels)" if renderer.frame_graph is not None else ""
    return renderer, engine.describe() + graph


class RenderStage(Stage):
    def __init__(self, inp: LatestSlot, out: LatestSlot, renderer: Renderer, controls, budget=None):
        super().__init__("render", inp, out)
        self.renderer, self.controls = renderer, controls
        self.budget = budget       # a RenderBudget (live/pipeline/render_budget.py), or None: never adapt
        self.last_frame: np.ndarray | None = None

    def process(self, m: Motion) -> Rendered:
        t0 = time.perf_counter()
        if self.controls.frozen and self.last_frame is not None:
            frame = self.last_frame
        else:
            with torch.no_grad():
                frame = self.renderer(m.delta_norm, m.gaze, m.mouth)
            self.last_frame = frame
            if self.budget is not None and m.found:
                # (while the face is lost the tracker searches the whole frame on the same cores: not the drawing's
                # own cost)
                size = self.budget.observe(time.perf_counter() - t0, m.index, m.interval)
                if size is not None:
                    self.renderer.draw_at(size)
        stamps = {**m.stamps, "render_start": t0, "render": time.perf_counter()}
        return Rendered(m.index, m.t_source, frame, m.driver, m.found, stamps, m.delta_norm)
