"""`live run`: the real-time loop.

    capture --slot--> motion --slot--> render --slot--> sinks (this thread)

Each stage is a thread; each hand-off holds only the newest message, so a slow stage drops
stale frames instead of building latency (with `--fast` the hand-offs block and nothing is
dropped). Every frame carries timestamps from capture to sink; the run reports per-stage
latency (median, p99), the added latency (captured -> handed to the sinks), fps and the
dropped frames, each counted where it was lost (live/pipeline/slots.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from loguru import logger

from live.config import LiveConfig
from live.engines.devices import resolve_device
from live.io.audio import start_audio
from live.io.sinks import open_sinks
from live.pipeline.capture import SYNTHETIC, CaptureStage, resolve_source
from live.pipeline.gaze_follow import GazeFollower
from live.pipeline.motion import Controls, MotionStage
from live.pipeline.render import RenderStage, make_renderer
from live.pipeline.run_report import FrameLog, FrameSamples, RunReport, StageTimes, log_report
from live.pipeline.scene import Scene, build_scene
from live.pipeline.slots import Closed, LatestSlot
from live.pipeline.tracking_budget import TrackingBudget
from live.tracking.estimator import make_estimator, make_smoother
from live.tracking.track_file import is_track_file, read_track


@dataclass
class Stages:
    """The three stage threads and the hand-offs between them."""
    capture: CaptureStage
    motion: MotionStage
    render: RenderStage
    slots: tuple[LatestSlot, LatestSlot, LatestSlot]   # captured, moved, rendered

    def start(self) -> None:
        for t in (self.render, self.motion, self.capture):
            t.start()

    def stop(self) -> None:
        self.capture.stop()
        for slot in self.slots:
            slot.abort()
        for t in (self.capture, self.motion, self.render):
            t.join(timeout=10)

    def raise_errors(self) -> None:
        for stage in (self.capture, self.motion, self.render):
            if stage.error is not None:
                raise stage.error

    def drops(self) -> dict[str, int]:
        captured, moved, rendered = self.slots
        at_stop = (self.capture.dropped_at_stop + self.motion.dropped_at_stop + self.render.dropped_at_stop
                   + sum(s.dropped_at_close for s in self.slots))
        return {"capture->motion": captured.dropped, "motion->render": moved.dropped,
                "render->sinks": rendered.dropped, "in flight at stop": at_stop}


def build_stages(cfg: LiveConfig, scene: Scene, source: str, renderer, controls: Controls) -> Stages:
    synthetic = source == SYNTHETIC
    block = cfg.run.fast
    slots = (LatestSlot("capture", block), LatestSlot("motion", block), LatestSlot("render", block))
    capture = CaptureStage(source, slots[0], output_fps(cfg, source), fast=cfg.run.fast, loop=cfg.run.loop,
                           camera_size=tuple(int(v) for v in cfg.run.camera_size), camera_fps=cfg.run.camera_fps,
                           mjpg=cfg.run.camera_mjpg, retry_s=cfg.run.camera_retry_s)
    # The synthetic driver and a recorded track bring their own parameters: no tracker is loaded.
    estimator = None if synthetic or is_track_file(source) else make_estimator(cfg.tracking)
    gaze = GazeFollower(cfg.run.gaze) if scene.kind == "warp" and estimator is not None else None
    budget = (TrackingBudget(1.0 / output_fps(cfg, source), can_stop_flip=cfg.tracking.flip_average)
              if estimator is not None and cfg.run.adapt and not cfg.run.fast else None)
    motion = MotionStage(slots[0], slots[1], estimator, make_smoother(cfg.smoothing), scene.space, scene.p_s,
                         controls, scene.neutral, cfg.run.lost_hold_s, cfg.run.lost_ease_s, synthetic=synthetic,
                         driven=cfg.run.driven, identity_limits=scene.identity_limits, gaze=gaze,
                         budget=budget)
    return Stages(capture, motion, RenderStage(slots[1], slots[2], renderer, controls), slots)


def output_fps(cfg: LiveConfig, source: str) -> float:
    """run.fps, or the source's own: a clip's frame rate, the camera's requested one, 25 for the rest."""
    if cfg.run.fps:
        return float(cfg.run.fps)
    from live.io.sources import IMAGE_SUFFIXES, is_camera, video_fps
    if source == SYNTHETIC or Path(source).suffix.lower() in IMAGE_SUFFIXES:
        return 25.0
    if is_camera(source):
        return float(cfg.run.camera_fps)
    if is_track_file(source):
        return read_track(source).fps
    return float(video_fps(source))


def run(cfg: LiveConfig, record_frames: bool = False, sample_frames: FrameSamples | None = None) -> RunReport:
    """The loop until the source ends, run.frames are written, or the user stops it. `record_frames`: keep
    per-frame latency records; `sample_frames`: keep copies of some delivered frames (benchmarks, tests)."""
    device = str(resolve_device(cfg.engine.device))
    source = resolve_source(cfg.run.source)
    scene = build_scene(cfg, device)
    for notice in scene.notices:
        logger.warning("{}", notice)
    out_size = (int(cfg.run.output_size[0]), int(cfg.run.output_size[1]))
    renderer, what = make_renderer(scene, cfg.engine, out_size, cfg.generator.truncation, cfg.run.strength,
                                   cfg.run.latent_smoothing)
    logger.info("driving {} with {}; rendering: {}", scene.description,
                "the synthetic motion" if source == SYNTHETIC else f"source {source}", what)
    controls = Controls(absolute=cfg.run.absolute, hud=cfg.run.hud)
    stages = build_stages(cfg, scene, source, renderer, controls)
    times = StageTimes()
    report = RunReport(engine=what, frame_log=FrameLog() if record_frames else None, frame_samples=sample_frames)

    def hud() -> list[str]:
        return [f"{report.fps:.1f} fps  latency {times.recent_median('added', 60):.0f} ms",
                "relative" if not controls.absolute else "absolute", "FROZEN" if controls.frozen else ""]

    sinks = open_sinks(cfg.run.sinks, output_fps(cfg, source), out_size, cfg.run.vcam_device, controls, hud)
    controls.preview = any(s.name == "window" and s.delivers for s in sinks)
    audio = start_audio(cfg.run.audio_delay, cfg.run.audio_input, cfg.run.audio_output)
    watch = _identity_watch(cfg, scene)
    with torch.no_grad():  # warm the renderer before the clock starts (compiles, first-call costs)
        renderer.warm_up()
    start = time.perf_counter()
    stages.start()
    try:
        _sink_loop(cfg, stages, sinks, audio, times, report, controls, start, watch)
    except KeyboardInterrupt:
        logger.info("stopped by the user")
    finally:
        stages.stop()
        for sink in sinks:
            sink.close()
        if audio is not None:
            audio.close()
        if stages.motion.estimator is not None:
            stages.motion.estimator.close()
        if watch is not None:
            watch.stop()
            report.identity = watch.summary()
    stages.raise_errors()
    report.seconds = time.perf_counter() - start
    report.frames_in = stages.capture.frames
    report.dropped_by_stage = stages.drops()
    if stages.motion.budget is not None:
        report.adaptations = stages.motion.budget.adaptations
    if scene.identity_limits is not None:
        report.identity_guard = {"frames_limited": stages.motion.limited_frames,
                                 "share": round(stages.motion.limited_frames / max(stages.motion.frames, 1), 3)}
    report.dropped = sum(report.dropped_by_stage.values())
    report.fps = report.written / report.seconds if report.seconds else 0.0
    report.stages = times.summary()
    log_report(report)
    return report


def _identity_watch(cfg: LiveConfig, scene: Scene):
    if not cfg.run.watch_identity:
        return None
    if scene.photo is None:
        logger.warning("--watch-identity needs an avatar (--avatar): it compares the output with the avatar's photo")
        return None
    from live.pipeline.identity_watch import IdentityWatch
    watch = IdentityWatch(scene.photo, cfg.run.watch_identity)
    watch.start()
    return watch


def _sink_loop(cfg: LiveConfig, stages: Stages, sinks, audio, times: StageTimes, report: RunReport,
               controls: Controls, start: float, watch=None) -> None:
    """This thread: take rendered frames, write them to every sink, keep the statistics."""
    last_log = start
    rendered = stages.slots[2]
    while not controls.quit:
        try:
            r = rendered.get()
        except Closed:
            return
        r.stamps["sink_start"] = time.perf_counter()
        for sink in sinks:
            sink.write(r.frame, r.driver, r.t_source)
        r.stamps["sink"] = time.perf_counter()
        added = times.add(r.stamps)
        report.written += 1
        report.found_frames += int(r.found)
        if watch is not None:
            watch.offer(report.written, r.frame)
        if report.frame_samples is not None:
            report.frame_samples.offer(report.written, r.frame, r.delta_norm)
        if report.frame_log is not None:
            report.frame_log.append(r.index, r.stamps.get("capture", 0.0) - start, added, r.found)
        now = time.perf_counter()
        report.fps = report.written / max(now - start, 1e-9)
        if audio is not None and report.written % 30 == 0:
            audio.follow_latency(times.recent_median("added", 60))
        if cfg.run.stats_every_s and now - last_log > cfg.run.stats_every_s:
            last_log = now
            logger.info("{:.1f} fps, added latency {:.0f} ms median, dropped {}", report.fps,
                        times.recent_median("added", 100), sum(s.dropped for s in stages.slots))
        report.sample_memory(now - start)
        if cfg.run.frames and report.written >= cfg.run.frames:
            return

