"""`live run`: the real-time loop.

    capture --slot--> motion --slot--> render --slot--> sinks (this thread)

Each stage is a thread; each hand-off holds only the newest message, so a slow stage drops
stale frames instead of building latency (with `--fast` the hand-offs block and nothing is
dropped). Every frame carries timestamps from capture to sink; the run reports per-stage
latency (median, p99), the added latency (captured -> handed to the sinks), fps and the
dropped frames, each counted where it was lost (live/pipeline/slots.py).

One `Pipeline` owns a run's resources (sinks, audio, the tracker, the identity watch, the
stage threads): each is registered for closing the moment it is opened, and closed once, in
reverse order, each close attempted even when one before it raises (its error is reported).
The threads are stopped first; a thread that does not stop within its join timeout is
reported, and what it uses (the tracker) is not closed under it.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from loguru import logger

from live.config import LiveConfig
from live.engines.devices import resolve_device
from live.io.audio import start_audio
from live.io.sinks import open_sinks
from live.pipeline.capture import FEED, SYNTHETIC, CaptureStage, resolve_source
from live.pipeline.faceless import FacelessStretch
from live.pipeline.gaze_follow import GazeFollower
from live.pipeline.motion import Controls, MotionStage
from live.pipeline.render import RenderStage, make_renderer
from live.pipeline.run_report import IN_FLIGHT_AT_STOP, FrameLog, FrameSamples, RunReport, StageTimes, log_report
from live.pipeline.scene import Scene, build_scene
from live.pipeline.sink_set import SinkSet
from live.pipeline.slots import Closed, LatestSlot
from live.pipeline.render_budget import RenderBudget
from live.pipeline.tracking_budget import TrackingBudget
from live.tracking.estimator import make_estimator, make_smoother
from live.tracking.track_file import is_track_file, read_track
from live.warp.driver_mouth import cut_mouth
from models.errors import first_line

JOIN_TIMEOUT_S = 10.0


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

    def stop(self, timeout: float | None = None) -> list[str]:
        """Stop and join every thread within one deadline (`timeout` s, JOIN_TIMEOUT_S); the names of those
        still running after it."""
        deadline = time.perf_counter() + (JOIN_TIMEOUT_S if timeout is None else timeout)
        self.capture.stop()
        for slot in self.slots:
            slot.abort()
        for t in (self.capture, self.motion, self.render):
            if t.ident is not None:
                t.join(timeout=max(deadline - time.perf_counter(), 0.0))
        return [t.name for t in (self.capture, self.motion, self.render) if t.is_alive()]

    def raise_errors(self) -> None:
        for stage in (self.capture, self.motion, self.render):
            if stage.error is not None:
                raise stage.error

    def adaptations(self) -> list[dict]:
        """The steps the loop took to keep up, tracking's and drawing's, in the order taken."""
        budgets = (self.motion.budget, self.render.budget)
        return sorted((a for b in budgets if b is not None for a in b.adaptations), key=lambda a: a["frame"])

    def drops(self) -> dict[str, int]:
        captured, moved, rendered = self.slots
        at_stop = (self.capture.dropped_at_stop + self.motion.dropped_at_stop + self.render.dropped_at_stop
                   + sum(s.dropped_at_close for s in self.slots))
        return {"capture->motion": captured.dropped, "motion->render": moved.dropped,
                "render->sinks": rendered.dropped, IN_FLIGHT_AT_STOP: at_stop}


def build_stages(cfg: LiveConfig, scene: Scene, source: str, renderer, controls: Controls,
                 feed: LatestSlot | None = None) -> Stages:
    synthetic = source == SYNTHETIC
    block = cfg.run.fast
    slots = (LatestSlot("capture", block), LatestSlot("motion", block), LatestSlot("render", block))
    capture = CaptureStage(source, slots[0], output_fps(cfg, source), fast=cfg.run.fast, loop=cfg.run.loop,
                           camera_size=tuple(int(v) for v in cfg.run.camera_size), camera_fps=cfg.run.camera_fps,
                           mjpg=cfg.run.camera_mjpg, retry_s=cfg.run.camera_retry_s, feed=feed)
    # The synthetic driver and a recorded track bring their own parameters: no tracker is loaded.
    estimator = None if synthetic or is_track_file(source) else make_estimator(cfg.tracking)
    gaze = GazeFollower(cfg.run.gaze) if scene.kind == "warp" and estimator is not None else None
    budget = (TrackingBudget(1.0 / output_fps(cfg, source), can_stop_flip=cfg.tracking.flip_average)
              if estimator is not None and cfg.run.adapt and not cfg.run.fast else None)
    cuts_mouth = scene.kind == "warp" and cfg.run.mouth == "driver" and estimator is not None
    motion = MotionStage(slots[0], slots[1], estimator, make_smoother(cfg.smoothing), scene.space, scene.p_s,
                         controls, scene.neutral, cfg.run.lost_hold_s, cfg.run.lost_ease_s, synthetic=synthetic,
                         driven=cfg.run.driven, identity_limits=scene.identity_limits, gaze=gaze,
                         budget=budget, retarget=scene.kind == "warp",
                         mouth_cut=cut_mouth if cuts_mouth else None)
    # the warp draws its frames smaller where drawing cannot keep up (the generator's size is its own)
    draw_budget = (RenderBudget(1.0 / output_fps(cfg, source))
                   if hasattr(renderer, "draw_at") and cfg.run.adapt and not cfg.run.fast else None)
    return Stages(capture, motion, RenderStage(slots[1], slots[2], renderer, controls, draw_budget), slots)


def output_fps(cfg: LiveConfig, source: str) -> float:
    """run.fps, or the source's own: a clip's frame rate, the camera's requested one, 25 for the rest (a feed:
    the camera rate, as a browser's camera runs at about that)."""
    if cfg.run.fps:
        return float(cfg.run.fps)
    if source == FEED:
        return float(cfg.run.camera_fps)
    from live.io.sources import IMAGE_SUFFIXES, is_camera, video_fps
    if source == SYNTHETIC or Path(source).suffix.lower() in IMAGE_SUFFIXES:
        return 25.0
    if is_camera(source):
        return float(cfg.run.camera_fps)
    if is_track_file(source):
        return read_track(source).fps
    return float(video_fps(source))


class Pipeline:
    """One run of the loop and everything it holds; `with Pipeline(cfg) as p: report = p.run()`.

    `feed` replaces run.source with frames someone else puts in (`live serve`: a browser's camera), and
    `sinks` replaces run.sinks with sinks made by the caller (the stream back to that browser); both are
    closed by the run like its own."""

    def __init__(self, cfg: LiveConfig, record_frames: bool = False, sample_frames: FrameSamples | None = None,
                 feed: LatestSlot | None = None, sinks: list | None = None):
        self.cfg, self.record_frames, self.sample_frames = cfg, record_frames, sample_frames
        self.feed, self.given_sinks = feed, sinks
        self.resources = contextlib.ExitStack()
        self.report = RunReport()
        self.times = StageTimes()

    def __enter__(self) -> "Pipeline":
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Every registered cleanup, once, last opened first (ExitStack); errors are reported by `_closing`."""
        self.resources.close()

    def _closing(self, what: str, close, unless_stuck: str | None = None) -> None:
        """Register `close` for the end of the run. It runs even if an earlier cleanup raised; its own error is
        reported, not raised. `unless_stuck`: the thread using the resource; still running, it is left open."""
        def run_it():
            # asked of the thread itself, not of what the join reported: a second Ctrl-C during the join skips it
            if unless_stuck is not None and self._thread_running(unless_stuck):
                self._problem(f"{what} left open: the {unless_stuck} thread, which uses it, did not stop")
                return
            try:
                close()
            except Exception as e:
                self._problem(f"closing {what} raised: {first_line(e, 200)}")
        self.resources.callback(run_it)

    def _thread_running(self, name: str) -> bool:
        stages = getattr(self, "stages", None)
        return stages is not None and any(t.name == name and t.is_alive()
                                          for t in (stages.capture, stages.motion, stages.render))

    def _problem(self, text: str) -> None:
        self.report.cleanup_problems.append(text)
        logger.error("{}", text)

    def _open(self) -> None:
        cfg = self.cfg
        device = str(resolve_device(cfg.engine.device))
        self.source = source = FEED if self.feed is not None else resolve_source(cfg.run.source)
        self.scene = scene = build_scene(cfg, device)
        for notice in scene.notices:
            logger.warning("{}", notice)
        out_size = (int(cfg.run.output_size[0]), int(cfg.run.output_size[1]))
        self.renderer, what = make_renderer(scene, cfg.engine, out_size, cfg.generator.truncation, cfg.run.strength,
                                            cfg.run.latent_smoothing)
        logger.info("driving {} with {}; rendering: {}", scene.description,
                    {SYNTHETIC: "the synthetic motion", FEED: "a browser's camera"}.get(source, f"source {source}"),
                    what)
        self.controls = controls = Controls(absolute=cfg.run.absolute, hud=cfg.run.hud)
        self.report = RunReport(engine=what, frame_log=FrameLog() if self.record_frames else None,
                                frame_samples=self.sample_frames)

        # the sinks first: a run whose frames could go nowhere stops before the tracker loads
        self.sinks = SinkSet(self.given_sinks if self.given_sinks is not None else
                             open_sinks(cfg.run.sinks, output_fps(cfg, source), out_size, cfg.run.vcam_device,
                                        controls, self.hud_lines))
        self._closing("the sinks", self._close_sinks)
        controls.preview = any(s.name == "window" and s.delivers for s in self.sinks)
        self.audio = start_audio(cfg.run.audio_delay, cfg.run.audio_input, cfg.run.audio_output)
        if self.audio is not None:
            self._closing("the audio", self.audio.close)
        self.stages = build_stages(cfg, scene, source, self.renderer, controls, self.feed)
        if self.stages.motion.estimator is not None:
            self._closing("the face tracker", self.stages.motion.estimator.close, unless_stuck="motion")
        self.watch = _identity_watch(cfg, scene)
        if self.watch is not None:
            self._closing("the identity watch", self._stop_watch)
        with torch.no_grad():  # warm the renderer before the clock starts (compiles, first-call costs)
            self.renderer.warm_up()

    def hud_lines(self) -> list[str]:
        """What the preview window writes over the frame (h toggles it)."""
        controls, stages = self.controls, getattr(self, "stages", None)
        askew = stages.motion.askew if stages is not None and not controls.absolute else []
        return [f"{self.report.fps:.1f} fps  latency {self.times.recent_median('added', 60):.0f} ms",
                "relative" if not controls.absolute else "absolute", "FROZEN" if controls.frozen else "",
                *(["neutral pose taken with"] + askew + ["face the camera, eyes open, press c"] if askew else [])]

    def _close_sinks(self) -> None:
        self.sinks.close()
        self.report.cleanup_problems += self.sinks.problems

    def _stop_watch(self) -> None:
        self.watch.stop()
        self.report.identity = self.watch.summary()

    def _stop_threads(self) -> None:
        for name in self.stages.stop():
            self._problem(f"the {name} thread did not stop within {JOIN_TIMEOUT_S:.0f} s")

    def run(self) -> RunReport:
        """The loop until the source ends, run.frames are written, or the user stops it; then every resource is
        closed (the threads first) and the report is made."""
        cfg, stages, report = self.cfg, self.stages, self.report
        start = time.perf_counter()
        self._closing("the stage threads", self._stop_threads)      # registered last: closed first
        stages.start()
        try:
            with ctrl_c_stops():
                _sink_loop(cfg, stages, self.sinks, self.audio, self.times, report, self.controls, start, self.watch)
        except KeyboardInterrupt:
            logger.info("stopped by the user")
        finally:
            report.seconds = time.perf_counter() - start
            self.close()
        stages.raise_errors()
        report.frames_in = stages.capture.frames
        report.source_outages = list(stages.capture.outages)
        report.sink_failures = list(self.sinks.failures)
        report.dropped_by_stage = stages.drops()
        report.adaptations = stages.adaptations()
        if self.scene.identity_limits is not None:
            report.identity_guard = {"frames_limited": stages.motion.limited_frames,
                                     "share": round(stages.motion.limited_frames / max(stages.motion.frames, 1), 3)}
        report.dropped = sum(report.dropped_by_stage.values())
        report.fps = report.written / report.seconds if report.seconds else 0.0
        report.stages = self.times.summary()
        log_report(report)
        return report


@contextlib.contextmanager
def ctrl_c_stops():
    """Ctrl-C (SIGINT) stops the run also where the process started with it ignored: a shell gives a script's
    background job (`live run ... &`) SIGINT ignored, and Python then never raises KeyboardInterrupt for it, so
    `kill -INT` (or the fault bench's Ctrl-C) left the run going for ever. Restored afterwards. Only on the main
    thread (signal handlers can be set nowhere else; `live serve` runs loops on others and stops them itself)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def run(cfg: LiveConfig, record_frames: bool = False, sample_frames: FrameSamples | None = None) -> RunReport:
    """The loop until the source ends, run.frames are written, or the user stops it. `record_frames`: keep
    per-frame latency records; `sample_frames`: keep copies of some delivered frames (benchmarks, tests)."""
    with Pipeline(cfg, record_frames, sample_frames) as pipeline:
        return pipeline.run()


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


def _sink_loop(cfg: LiveConfig, stages: Stages, sinks: SinkSet, audio, times: StageTimes, report: RunReport,
               controls: Controls, start: float, watch=None) -> None:
    """This thread: take rendered frames, write them to every sink, keep the statistics."""
    last_log = start
    rendered = stages.slots[2]
    faceless = FacelessStretch()
    while not controls.quit:
        try:
            r = rendered.get()
        except Closed:
            return
        r.stamps["sink_start"] = time.perf_counter()
        sinks.write(r.frame, r.driver, r.t_source, report.written)
        r.stamps["sink"] = time.perf_counter()
        added = times.add(r.stamps)
        report.written += 1
        report.found_frames += int(r.found)
        if r.found or r.driver is not None:     # (a camera outage's empty frames are said as such, not as no face)
            faceless.see(r.found, r.t_source)
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

