"""What a run reports: frames in, written and dropped, per-stage latency, memory over time."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from loguru import logger

from live.pipeline.latency import LatencyHistogram


IN_FLIGHT_AT_STOP = "in flight at stop"   # the key of dropped_by_stage for frames between stages at the stop


@dataclass
class RunReport:
    engine: str = ""                                 # what rendered (backend, precision, device, threads)
    frames_in: int = 0
    written: int = 0
    dropped: int = 0
    dropped_by_stage: dict = field(default_factory=dict)
    seconds: float = 0.0
    fps: float = 0.0
    stages: dict = field(default_factory=dict)
    found_frames: int = 0
    identity: dict = field(default_factory=dict)     # the identity watch's figures (--watch-identity)
    identity_guard: dict = field(default_factory=dict)   # how often the guard held the driver back
    adaptations: list = field(default_factory=list)  # steps taken to keep up (live/pipeline/*_budget.py)
    source_outages: list = field(default_factory=list)   # {at_s, seconds, frames}: the camera delivered nothing
    sink_failures: list = field(default_factory=list)    # {sink, after_frames, message}: sinks dropped mid-run
    cleanup_problems: list = field(default_factory=list)  # closes that raised, threads that did not stop
    memory: list = field(default_factory=list)      # (s since start, resident MB, of it the frame log's MB)
    memory_every: int = 100                          # frames between memory samples (doubles as they thin)
    frame_log: FrameLog | None = None                # per-frame records, only when asked for (benchmarks, --stats)
    frame_samples: FrameSamples | None = None        # copies of some delivered frames, only when asked for

    MEMORY_SAMPLES = 2048

    @property
    def in_flight_at_stop(self) -> int:
        """Frames still between stages when the run stopped (counted in `dropped`, which is every frame read and
        not written)."""
        return int(self.dropped_by_stage.get(IN_FLIGHT_AT_STOP, 0))

    @property
    def dropped_behind(self) -> int:
        """Frames a stage dropped because it fell behind (a newer frame replaced them before they were taken)."""
        return self.dropped - self.in_flight_at_stop

    @property
    def per_frame(self) -> list:
        """(index, t_captured, added latency ms, found) per written frame; empty unless recorded."""
        return self.frame_log.rows() if self.frame_log is not None else []

    def sample_memory(self, t: float) -> None:
        """Every 100 frames at first; whenever MEMORY_SAMPLES are held, every other one is dropped and the
        interval doubles, so an hours-long run keeps an even, bounded trace."""
        if self.written % self.memory_every != 1:
            return
        # The frame log (benchmarks, --stats) grows by design, 32 bytes a frame: recorded beside the resident
        # size so a trace can tell the loop's own growth from the record kept of it.
        log_mb = self.frame_log.nbytes() / 2**20 if self.frame_log is not None else 0.0
        self.memory.append((round(t, 2), round(resident_mb(), 1), round(log_mb, 2)))
        if len(self.memory) >= self.MEMORY_SAMPLES:
            self.memory = self.memory[::2]
            self.memory_every *= 2

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("frame_log", "frame_samples")}


class FrameSamples:
    """Copies of delivered frames (the 1st, then every `every`-th, at most `limit`) with the change each was
    rendered with: what the sinks really received, for checks after a run (not blank; the same picture as
    a reference renderer draws for that change)."""

    def __init__(self, every: int = 25, limit: int = 32):
        self.every, self.limit = max(int(every), 1), int(limit)
        self.frames: list[tuple[int, np.ndarray]] = []     # (written frame number, HxWx3 uint8)
        self.deltas: list[np.ndarray | None] = []          # the normalised delta_p of each

    def offer(self, written: int, frame: np.ndarray, delta: np.ndarray | None = None) -> None:
        if (written - 1) % self.every == 0 and len(self.frames) < self.limit:
            self.frames.append((written, frame.copy()))
            self.deltas.append(None if delta is None else np.array(delta, np.float32))


class FrameLog:
    """Per-frame records in a flat array of doubles (32 bytes a frame, not a Python tuple's ~200)."""

    def __init__(self):
        from array import array
        self.values = array("d")

    def append(self, index: int, t_captured: float, added_ms: float, found: bool) -> None:
        self.values.extend((index, t_captured, added_ms, float(found)))

    def __len__(self) -> int:
        return len(self.values) // 4

    def nbytes(self) -> int:
        return self.values.buffer_info()[1] * self.values.itemsize

    def rows(self) -> list:
        v = self.values
        return [(int(v[i]), v[i + 1], v[i + 2], bool(v[i + 3])) for i in range(0, len(v), 4)]


class StageTimes:
    """Per-stage latency over the whole run, in constant memory (live.pipeline.latency.LatencyHistogram)."""

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


def resident_mb() -> float:
    """This process's resident memory (MB): /proc on Linux, the peak from getrusage elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            import os
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def log_report(report: RunReport) -> None:
    for name, s in report.stages.items():
        label = "added latency" if name == "added" else name
        logger.info("{:<14} median {:7.2f} ms   p99 {:7.2f} ms", label, s["median_ms"], s["p99_ms"])
    # frames still between stages when the run stops were not dropped by a stage falling behind: said apart
    behind = {k: v for k, v in report.dropped_by_stage.items() if v and k != IN_FLIGHT_AT_STOP}
    logger.info("{} frames in, {} written, {}{}; {:.1f} s, {:.1f} fps", report.frames_in, report.written,
                f"{report.dropped_behind} dropped ({', '.join(f'{k} {v}' for k, v in behind.items())})" if behind
                else "none dropped", f", {report.in_flight_at_stop} in flight at stop" if report.in_flight_at_stop
                else "", report.seconds, report.fps)
    if report.written and not report.found_frames and not report.source_outages:
        logger.warning("no face was found in any frame of the source: the avatar was shown at rest. Give a source "
                       "that shows a face (--source: a camera, a video or a photo of one)")
    for o in report.source_outages:
        logger.warning("the source delivered nothing for {:.1f} s from {:.1f} s ({} frames sent meanwhile){}",
                       o["seconds"], o["at_s"], o["frames"], "" if o.get("ended", True) else ", until the run stopped")
    # (sink failures and cleanup problems were each logged once as they happened; they are in the report)
    if report.identity_guard:
        logger.info("identity guard: held a change back in {} frames ({:.0%})", report.identity_guard["frames_limited"],
                    report.identity_guard["share"])
    if report.identity:
        i = report.identity
        logger.info("identity: {} checks, a face in {}, CSIM against the avatar's photo median {} (lowest {}), "
                    "not the avatar in {}", i["checks"], i["faces"], i["csim_median"], i["csim_min"], i["not_the_avatar"])
