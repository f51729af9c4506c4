"""`live run`: the real-time loop.

    capture --slot--> motion --slot--> render --slot--> sinks (this thread)

Each stage is a thread; each hand-off holds only the newest message, so a slow stage drops
stale frames instead of building latency (with `--fast` the hand-offs block and nothing is
dropped). Every frame carries timestamps from capture to sink; the run reports per-stage
latency (median, p99), the added latency (captured -> handed to the sinks), fps and the
dropped frames, and `frames_in == written + dropped` always holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from loguru import logger

from live.config import LiveConfig
from live.pipeline.capture import SYNTHETIC, CaptureStage, resolve_source
from live.pipeline.motion import Controls, MotionStage
from live.pipeline.render import Renderer, RenderStage
from live.pipeline.slots import Closed, LatestSlot
from live.stats import LatencyHistogram


@dataclass
class Scene:
    """What is driven: a generator (tuned for the avatar), its code, its parameters, the directions."""
    generator: torch.nn.Module
    w_s: torch.Tensor
    p_s: np.ndarray
    directions: object
    description: str
    notices: list[str] = field(default_factory=list)


def demo_directions(G, seed: int = 0):
    """A random direction matrix in the paper's format for generators without fitted directions:
    it moves the face (so every stage runs at full cost) but means nothing. Said so at start."""
    from models.directions import Directions
    from models.face_landmarks import PARAM_NAMES
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(8 * G.style_dim, len(PARAM_NAMES), generator=g) * 0.05
    # Typical human ranges (degrees, standard deviations) mapped to [-6, 6], as a fit would.
    spans = [30.0, 20.0, 15.0] + [3.0] * (len(PARAM_NAMES) - 3)
    prange = torch.tensor([[-s, s] for s in spans])
    return Directions(weight=weight, bias=torch.zeros(8 * G.style_dim), param_range=prange,
                      shift_dim=G.style_dim, fit_info={"method": "demo: random"})


def load_scene(cfg: LiveConfig, device: str = "cpu") -> Scene:
    from live.generator import generator_from_config
    from live.model_store import ModelStore
    from models import load_generator
    from models.checkpoint import weights_hash
    from models.directions import Directions, file_sha256
    store = ModelStore()
    notices = []
    if cfg.run.avatar:
        from live.avatar import Avatar, AvatarError
        info = Avatar.read(cfg.run.avatar)
        g_spec = cfg.generator.path or info.generator_hint
        if not g_spec:
            raise AvatarError(f"{cfg.run.avatar}: give the generator it was made with (-g)")
        try:
            G = load_generator(store.resolve(str(g_spec)), device)
        except Exception as e:
            raise AvatarError(f"{cfg.run.avatar} was made with generator {info.generator_hint!r}, which does not load "
                              f"here ({e}); give it with -g PATH") from None
        avatar = Avatar.load(cfg.run.avatar, G)
        if not cfg.run.directions:
            raise AvatarError("give the direction matrix the avatar is driven with: --directions A.pt "
                              "(`live directions fit` makes one for this generator)")
        d_path = store.resolve(cfg.run.directions)
        directions = Directions.load(d_path, require_ours=False)
        directions.check_generator(weights_hash(G))
        if avatar.directions_sha256 and avatar.directions_sha256 != file_sha256(d_path):
            notices.append("these directions are not the ones the avatar was made with; its p_s still applies, "
                           "but motion may differ from what `live avatar create` previewed")
        return Scene(avatar.generator, avatar.w_s, avatar.p_s.numpy().astype(np.float64), directions,
                     f"avatar {cfg.run.avatar}", notices)
    G = generator_from_config(cfg.generator, device)
    g = torch.Generator().manual_seed(cfg.generator.seed)
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.style_dim, generator=g).to(G.w_avg.device), 0.7)
    if cfg.run.directions:
        directions = Directions.load(store.resolve(cfg.run.directions), require_ours=False)
    else:
        directions = demo_directions(G)
        notices.append("no --directions: using random demo directions, so the face moves but does not follow "
                       "yours. Fit real ones with `live directions fit -g G.pt -o A.pt`.")
    notices.append("no --avatar: driving a random face of the generator. Make your own with "
                   "`live avatar create PHOTO -g G.pt -d A.pt -o me.pt`.")
    return Scene(G, G.broadcast(w)[0].cpu(), np.zeros(directions.n_params), directions, "a random face", notices)


@dataclass
class RunReport:
    frames_in: int = 0
    written: int = 0
    dropped: int = 0
    dropped_by_stage: dict = field(default_factory=dict)
    seconds: float = 0.0
    fps: float = 0.0
    stages: dict = field(default_factory=dict)
    found_frames: int = 0
    memory: list = field(default_factory=list)      # (seconds since start, resident MB), see sample_memory
    memory_every: int = 100                          # frames between memory samples (doubles as they thin)
    frame_log: FrameLog | None = None                # per-frame records, only when asked for (benchmarks, --stats)

    MEMORY_SAMPLES = 2048

    @property
    def per_frame(self) -> list:
        """(index, t_captured, added latency ms, found) per written frame; empty unless recorded."""
        return self.frame_log.rows() if self.frame_log is not None else []

    def sample_memory(self, t: float) -> None:
        """Every 100 frames at first; whenever MEMORY_SAMPLES are held, every other one is dropped and the
        interval doubles, so an hours-long run keeps an even, bounded trace."""
        if self.written % self.memory_every != 1:
            return
        self.memory.append((round(t, 2), round(resident_mb(), 1)))
        if len(self.memory) >= self.MEMORY_SAMPLES:
            self.memory = self.memory[::2]
            self.memory_every *= 2

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "frame_log"}


class FrameLog:
    """Per-frame records in a flat array of doubles (32 bytes a frame, not a Python tuple's ~200)."""

    def __init__(self):
        from array import array
        self.values = array("d")

    def append(self, index: int, t_captured: float, added_ms: float, found: bool) -> None:
        self.values.extend((index, t_captured, added_ms, float(found)))

    def __len__(self) -> int:
        return len(self.values) // 4

    def rows(self) -> list:
        v = self.values
        return [(int(v[i]), v[i + 1], v[i + 2], bool(v[i + 3])) for i in range(0, len(v), 4)]


class StageTimes:
    """Per-stage latency over the whole run, in constant memory (live.stats.LatencyHistogram)."""

    NAMES = ("track", "render", "sinks", "added")
    PAIRS = {"track": ("track_start", "track"), "render": ("render_start", "render"),
             "sinks": ("sink_start", "sink"), "added": ("capture", "sink")}

    def __init__(self):
        self.hist = {n: LatencyHistogram() for n in self.NAMES}

    def add(self, stamps: dict) -> float:
        for name, (a, b) in self.PAIRS.items():
            if a in stamps and b in stamps:
                self.hist[name].add((stamps[b] - stamps[a]) * 1e3)
        recent = self.hist["added"].recent
        return recent[-1] if recent else float("nan")

    def recent_median(self, name: str, k: int) -> float:
        recent = list(self.hist[name].recent)[-k:]
        return float(np.median(recent)) if recent else 0.0

    def summary(self) -> dict:
        return {n: h.stats().__dict__ for n, h in self.hist.items() if h.n}


def run(cfg: LiveConfig, record_frames: bool = False) -> RunReport:
    from calibration import CalibrationProfile
    from live.audio import start_audio
    from live.engine import make_engine
    from live.engine.base import resolve_device
    from live.face_params import ParamEstimator, ParamSmoother
    from live.sinks import open_sinks

    device = str(resolve_device(cfg.engine.device))
    source = resolve_source(cfg.run.source)
    scene = load_scene(cfg, device)
    for notice in scene.notices:
        logger.warning("{}", notice)
    engine = make_engine(scene.generator, cfg.engine)
    logger.info("driving {} with {}; synthesis: {}", scene.description,
                "the synthetic motion" if source == SYNTHETIC else f"source {source}", engine.describe())
    controls = Controls(absolute=cfg.run.absolute, hud=cfg.run.hud)
    out_size = (int(cfg.run.output_size[0]), int(cfg.run.output_size[1]))
    renderer = Renderer(engine, scene.w_s, scene.generator.w_avg, scene.directions, out_size,
                        cfg.generator.truncation, cfg.run.strength, cfg.run.latent_smoothing)
    neutral = CalibrationProfile.load(cfg.run.profile).neutral if cfg.run.profile else None
    estimator = None if source == SYNTHETIC else ParamEstimator(cfg.tracking)
    smoother = ParamSmoother(cfg.smoothing)

    block = cfg.run.fast
    captured, moved, rendered = LatestSlot("capture", block), LatestSlot("motion", block), LatestSlot("render", block)
    fps = cfg.run.fps
    capture = CaptureStage(source, captured, fps, fast=cfg.run.fast, loop=cfg.run.loop,
                           camera_size=tuple(int(v) for v in cfg.run.camera_size), camera_fps=cfg.run.camera_fps,
                           mjpg=cfg.run.camera_mjpg, retry_s=cfg.run.camera_retry_s)
    motion = MotionStage(captured, moved, estimator, smoother, scene.directions, scene.p_s, controls, neutral,
                         cfg.run.lost_hold_s, cfg.run.lost_ease_s, synthetic=(source == SYNTHETIC),
                         driven=cfg.run.driven)
    render = RenderStage(moved, rendered, renderer, controls)
    times = StageTimes()
    report = RunReport(frame_log=FrameLog() if record_frames else None)
    live_fps = [0.0]

    def hud() -> list[str]:
        return [f"{live_fps[0]:.1f} fps  latency {times.recent_median('added', 60):.0f} ms",
                "relative" if not controls.absolute else "absolute", "FROZEN" if controls.frozen else ""]

    sinks = open_sinks(cfg.run.sinks, fps, out_size, cfg.run.vcam_device, controls, hud)
    audio = start_audio(cfg.run.audio_delay, cfg.run.audio_input, cfg.run.audio_output)
    with torch.no_grad():  # warm the renderer before the clock starts (compiles, first-call costs)
        renderer(np.zeros(scene.directions.n_params, np.float32))
    start = time.perf_counter()
    last_log = start
    for t in (render, motion, capture):
        t.start()
    try:
        while not controls.quit:
            try:
                r = rendered.get()
            except Closed:
                break
            r.stamps["sink_start"] = time.perf_counter()
            for sink in sinks:
                sink.write(r.frame, r.driver)
            r.stamps["sink"] = time.perf_counter()
            added = times.add(r.stamps)
            report.written += 1
            report.found_frames += int(r.found)
            if report.frame_log is not None:
                report.frame_log.append(r.index, r.stamps.get("capture", 0.0) - start, added, r.found)
            now = time.perf_counter()
            live_fps[0] = report.written / max(now - start, 1e-9)
            if audio is not None and report.written % 30 == 0:
                audio.follow_latency(times.recent_median("added", 60))
            if cfg.run.stats_every_s and now - last_log > cfg.run.stats_every_s:
                last_log = now
                logger.info("{:.1f} fps, added latency {:.0f} ms median, dropped {}", live_fps[0],
                            times.recent_median("added", 100), captured.dropped + moved.dropped + rendered.dropped)
            report.sample_memory(now - start)
            if cfg.run.frames and report.written >= cfg.run.frames:
                break
    except KeyboardInterrupt:
        logger.info("stopped by the user")
    finally:
        capture.stop()
        for slot in (captured, moved, rendered):
            slot.close()
        for t in (capture, motion, render):
            t.join(timeout=10)
        for sink in sinks:
            sink.close()
        if audio is not None:
            audio.close()
        if estimator is not None:
            estimator.close()
    for stage in (capture, motion, render):
        if stage.error is not None:
            raise stage.error
    report.seconds = time.perf_counter() - start
    report.frames_in = capture.frames
    report.dropped_by_stage = {"capture->motion": captured.dropped, "motion->render": moved.dropped,
                               "render->sinks": rendered.dropped}
    in_flight = report.frames_in - report.written - sum(report.dropped_by_stage.values())
    report.dropped_by_stage["stopped in flight"] = max(in_flight, 0)
    report.dropped = sum(report.dropped_by_stage.values())
    report.fps = report.written / report.seconds if report.seconds else 0.0
    report.stages = times.summary()
    _log_report(report)
    return report


def resident_mb() -> float:
    """This process's resident memory (MB): /proc on Linux, the peak from getrusage elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            import os
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def _log_report(report: RunReport) -> None:
    for name, s in report.stages.items():
        label = "added latency" if name == "added" else name
        logger.info("{:<14} median {:7.2f} ms   p99 {:7.2f} ms", label, s["median_ms"], s["p99_ms"])
    logger.info("{} frames in, {} written, {} dropped ({}); {:.1f} s, {:.1f} fps", report.frames_in, report.written,
                report.dropped, ", ".join(f"{k} {v}" for k, v in report.dropped_by_stage.items() if v) or "none",
                report.seconds, report.fps)
