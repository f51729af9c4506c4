"""Faults injected into the real loop, mid-run, each measured the same way (`python -m bench faults`,
tests/test_faults.py).

Each scenario runs `live run`'s loop on the bundled demo painting (mesh warp, real tracking) or in a
`live run` process, injects its fault where the operating system or a device would (a camera whose
reads fail and which cannot be reopened for a while; a file that may not grow past a size, as on a
full disk; /dev/full; a virtual camera whose device goes away; a close that raises; a tracker that
hangs), and returns what happened: frames delivered during and after the fault, whether the run
recovered, what was lost, and the lines the user saw.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

CLIP = "lp_d6.mp4"


def _config(media: Path, **run):
    from live.config_files import load_config
    overrides = {"run.sinks": ["null"], "run.stats_every_s": 0, "run.camera_retry_s": 0.5}
    overrides.update({f"run.{k}": v for k, v in run.items()})
    return load_config(overrides=overrides)


@contextlib.contextmanager
def user_lines():
    """The warning and error lines the loop logs meanwhile (what the user sees), as a list."""
    from loguru import logger
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(f"{m.record['level'].name}: {m.record['message']}"), level="INFO")
    try:
        yield lines
    finally:
        logger.remove(sink)


class CameraRig:
    """A camera made of a clip's frames, paced at the clip's rate: after `fail_after` frames it stops (reads
    fail, as an unplugged camera's do) and cannot be reopened until `outage_s` later (never: None)."""

    def __init__(self, clip: Path, fail_after: int, outage_s: float | None, raise_on_read: bool = False):
        from live.io.sources import iter_video_rgb, video_fps
        self.frames = [f[:, :, ::-1].copy() for _, _, f in iter_video_rgb(clip, max_frames=300)]
        self.period = 1.0 / video_fps(clip)
        self.fail_after, self.outage_s, self.raise_on_read = fail_after, outage_s, raise_on_read
        self.read_count, self.failed_at, self.opens = 0, None, 0

    def available(self) -> bool:
        if self.failed_at is None:
            return True
        return self.outage_s is not None and time.perf_counter() - self.failed_at >= self.outage_s

    def open(self, device):
        self.opens += 1
        return FakeCamera(self)


class FakeCamera:
    def __init__(self, rig: CameraRig):
        self.rig, self.opened = rig, rig.available()
        if self.opened and rig.failed_at is not None:
            rig.failed_at, rig.fail_after = None, None           # plugged back in: it stays
        self.last = time.perf_counter()

    def isOpened(self) -> bool:     # noqa: N802  (OpenCV's name)
        return self.opened

    def set(self, *args) -> bool:
        return True

    def read(self):
        rig = self.rig
        if not self.opened or rig.failed_at is not None:
            return False, None
        if rig.fail_after is not None and rig.read_count >= rig.fail_after:
            rig.failed_at = time.perf_counter()
            if rig.raise_on_read:
                raise RuntimeError("VIDIOC_DQBUF: No such device")
            return False, None
        time.sleep(max(self.last + rig.period - time.perf_counter(), 0.0))
        self.last = time.perf_counter()
        frame = rig.frames[rig.read_count % len(rig.frames)]
        rig.read_count += 1
        return True, frame

    def release(self) -> None:
        self.opened = False


@contextlib.contextmanager
def patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def ctrl_c() -> None:
    """What Ctrl-C does: SIGINT to the process, handled on the main thread."""
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def camera_outage(media: Path, outage_s: float = 2.5, raise_on_read: bool = False, frames: int = 240) -> dict:
    """The camera stops after 60 frames for `outage_s`, then comes back; the loop runs on to `frames`."""
    import live.pipeline.capture as capture
    from live.pipeline.loop import run
    rig = CameraRig(media / CLIP, fail_after=60, outage_s=outage_s, raise_on_read=raise_on_read)
    with user_lines() as lines, patched(capture, "open_camera_device", rig.open):
        report = run(_config(media, source="0", frames=frames), record_frames=True)
    outage = report.source_outages[0] if report.source_outages else None
    rows = np.array([(t, found) for _, t, _, found in report.per_frame]) if report.per_frame else np.zeros((0, 2))
    if outage is None:
        return {"fault": "camera stops" + (" (read raises)" if raise_on_read else ""), "recovered": False,
                "messages": lines}
    end = outage["at_s"] + outage["seconds"]
    during = rows[(rows[:, 0] >= outage["at_s"]) & (rows[:, 0] < end)] if len(rows) else rows
    after = rows[rows[:, 0] >= end] if len(rows) else rows
    return {"fault": f"camera stops for {outage_s:g} s" + (", its read raises" if raise_on_read else ""),
            "during": f"{len(during)} frames (avatar at rest)", "after": f"{len(after)} frames, face in "
            f"{int(after[:, 1].sum()) if len(after) else 0}", "recovered": bool(outage["ended"] and len(after)
            and after[:, 1].sum() > 0), "lost": f"only the {outage['seconds']:.1f} s the camera gave nothing",
            "outage": outage, "reopen_attempts": rig.opens - 1, "messages": lines, "report": report}


def ctrl_c_during_outage(media: Path, after_s: float = 1.0) -> dict:
    """The camera stops for good; Ctrl-C `after_s` into the outage: how long until the run has ended."""
    import live.pipeline.capture as capture
    from live.pipeline.loop import run
    rig = CameraRig(media / CLIP, fail_after=30, outage_s=None)
    pressed = {}

    def watch_for_outage():
        while rig.failed_at is None:
            time.sleep(0.02)
        time.sleep(after_s)
        pressed["at"] = time.perf_counter()
        ctrl_c()

    threading.Thread(target=watch_for_outage, daemon=True).start()
    with user_lines() as lines, patched(capture, "open_camera_device", rig.open):
        report = run(_config(media, source="0", frames=0))
    took = time.perf_counter() - pressed["at"] if "at" in pressed else float("nan")
    return {"fault": "Ctrl-C while the camera is lost", "during": f"{report.written} frames before Ctrl-C",
            "after": f"ended {took:.2f} s after Ctrl-C", "recovered": bool(took < 5.0 and not report.cleanup_problems),
            "lost": "nothing (the run was asked to stop)", "seconds_to_stop": took, "messages": lines, "report": report}


def _run_live(args: list[str], file_limit: int | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    def limit():
        import resource             # POSIX only, as these scenarios are
        if file_limit is not None:         # a file may not grow past this: its writes fail, as on a full disk
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
    return subprocess.run([sys.executable, "-m", "live", *args], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=limit, cwd=Path(__file__).resolve().parents[1])


def playable_frames(path: Path) -> int:
    import cv2
    cap = cv2.VideoCapture(str(path))
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def disk_fills(out: Path, frames: int = 150, limit_bytes: int = 400_000) -> dict:
    """`live run --sink file:OUT null`: OUT may not grow past `limit_bytes` (its writes then fail, EFBIG as a
    full disk's ENOSPC). The run must go on to the end with the null sink; OUT must play up to the failure."""
    out.unlink(missing_ok=True)
    # --fast: no frame is dropped, so none is held in the file: it holds exactly the frames the sink took
    done = _run_live(["run", "--fast", "--frames", str(frames), "--sink", f"file:{out}", "null", "--stats",
                      str(out) + ".json"], file_limit=limit_bytes)
    lines = [line for line in done.stderr.splitlines() if " ERROR " in line or " WARNING " in line]
    import json
    stats = json.loads(Path(str(out) + ".json").read_text()) if done.returncode == 0 else {}
    failure = (stats.get("sink_failures") or [{}])[0]
    kept = playable_frames(out) if out.is_file() else 0
    return {"fault": f"disk fills ({limit_bytes // 1000} kB) under --sink file", "during": f"the file took "
            f"{failure.get('after_frames', '?')} frames", "after": f"{stats.get('written', 0)} of {frames} to null",
            "recovered": done.returncode == 0 and stats.get("written") == frames and kept > 0,
            "lost": f"the file's frames after the failure (it plays {kept})", "playable": kept,
            "returncode": done.returncode, "stats": stats, "messages": lines}


def dev_full(frames: int = 60) -> dict:
    done = _run_live(["run", "--frames", str(frames), "--sink", "file:/dev/full", "null"])
    lines = [line for line in done.stderr.splitlines() if " ERROR " in line or " WARNING " in line]
    return {"fault": "--sink file:/dev/full (ENOSPC)", "during": "-", "after": "run went on with null",
            "recovered": done.returncode == 0, "lost": "the file (nothing fits)", "returncode": done.returncode,
            "messages": lines}


class FakeVirtualCamera:
    """pyvirtualcam.Camera whose device goes away after `gone_after` frames; its close may raise too."""
    gone_after, close_raises, closed = 30, False, 0

    def __init__(self, width, height, fps, fmt=None, device=None, print_fps=False):
        self.device, self.sent = device or "/dev/video9", 0

    def send(self, frame) -> None:
        if self.sent >= self.gone_after:
            raise RuntimeError("error writing frame: No such device")
        self.sent += 1

    def close(self) -> None:
        type(self).closed += 1
        if self.close_raises:
            raise RuntimeError("device busy")


def sink_raises(media: Path, frames: int = 90, close_raises: bool = False, watch: bool = False) -> dict:
    """`--sink vcam null`: the virtual camera's device disappears after 30 frames (and with `close_raises`
    its close raises too). The run must drop it with one line and go on to `frames` with null."""
    import pyvirtualcam

    from live.pipeline.loop import run
    FakeVirtualCamera.close_raises, FakeVirtualCamera.closed = close_raises, 0
    with user_lines() as lines, patched(pyvirtualcam, "Camera", FakeVirtualCamera):
        report = run(_config(media, source=str(media / CLIP), sinks=["vcam", "null"], frames=frames,
                             watch_identity=15 if watch else 0))
    failure = report.sink_failures[0] if report.sink_failures else {}
    return {"fault": "virtual camera device gone" + (", its close raises" if close_raises else ""),
            "during": f"vcam took {failure.get('after_frames', '?')}", "after": f"{report.written} of {frames} "
            f"to null", "recovered": report.written == frames and bool(failure),
            "lost": "the vcam's frames after its device went", "messages": lines, "report": report,
            "vcam_closed": FakeVirtualCamera.closed}


class Spy:
    """Wraps the loop's estimator: counts closes; with `hang_after`, its calls block from that frame on (a tracker
    stuck in a driver call) until `release` is set."""

    def __init__(self, estimator, hang_after: int | None = None):
        self.estimator, self.hang_after, self.calls, self.closes = estimator, hang_after, 0, 0
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self.estimator, name)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.hang_after is not None and self.calls > self.hang_after:
            self.release.wait()
        return self.estimator(*args, **kwargs)

    def close(self) -> None:
        self.closes += 1
        self.estimator.close()


@contextlib.contextmanager
def spied_estimator(hang_after: int | None = None):
    import live.pipeline.loop as loop
    spies: list[Spy] = []
    make = loop.make_estimator

    def make_spy(cfg):
        spies.append(Spy(make(cfg), hang_after))
        return spies[-1]
    with patched(loop, "make_estimator", make_spy):
        yield spies


def closes_in_order(media: Path) -> dict:
    """The vcam's device goes and its close raises; the identity watch runs: every other resource (the tracker,
    the watch, the other sinks) is still closed, once."""
    with spied_estimator() as spies:
        result = sink_raises(media, close_raises=True, watch=True)
    report = result["report"]
    watch_threads = [t for t in threading.enumerate() if t.name == "identity-watch"]
    closed = spies[0].closes if spies else 0
    return {**result, "fault": "a sink's close raises (identity watch on)", "tracker_closes": closed,
            "watch_running": bool(watch_threads), "recovered": result["recovered"] and closed == 1
            and not watch_threads and bool(report.identity), "lost": "nothing else: tracker closed "
            f"{closed}x, watch stopped, the close error reported"}


def tracker_hangs(media: Path, join_timeout_s: float = 1.0) -> dict:
    """The tracker hangs after 20 frames; Ctrl-C 2 s later. The run must end, report the stuck thread, and leave
    the tracker it is inside open (closing it under the thread would crash in native code)."""
    import live.pipeline.loop as loop
    with spied_estimator(hang_after=20) as spies, user_lines() as lines, \
            patched(loop, "JOIN_TIMEOUT_S", join_timeout_s):
        pressed = {}

        def press_when_stuck():
            while not spies or spies[0].calls <= 20:
                time.sleep(0.02)
            time.sleep(2.0)
            pressed["at"] = time.perf_counter()
            ctrl_c()
        threading.Thread(target=press_when_stuck, daemon=True).start()
        try:
            report = loop.run(_config(media, source=str(media / CLIP), frames=0))
        finally:
            took = time.perf_counter() - pressed.get("at", time.perf_counter())
            if spies:
                spies[0].release.set()          # let the stuck thread finish now the check is done
    spy = spies[0]
    stuck = [p for p in report.cleanup_problems if "did not stop" in p]
    left_open = [p for p in report.cleanup_problems if "left open" in p]
    return {"fault": "the tracker hangs; Ctrl-C", "during": f"{report.written} frames before it hung",
            "after": f"ended {took:.1f} s after Ctrl-C", "recovered": bool(stuck and left_open and spy.closes == 0),
            "lost": "nothing closed under the stuck thread", "problems": report.cleanup_problems,
            "tracker_closes": spy.closes, "messages": lines, "report": report}
