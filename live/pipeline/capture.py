"""The capture stage: frames from a camera, a video file, a still image, a recorded face-parameter track
(`live track`'s CSV: parameters instead of images), the synthetic driver, or a feed that another part of
the program fills (`live serve`: a browser's camera arriving over WebRTC).

A camera is read on this thread as fast as it delivers; the hand-off keeps only the newest
frame. A camera that is busy, missing or unplugged mid-run (its reads fail or raise) is reopened
with back-off (`retry_s`, doubling up to MAX_RETRY_S); while it is gone, empty frames keep
flowing at the output rate, so the sinks (a call's virtual camera) keep receiving the avatar,
which holds and then eases to its neutral pose instead of freezing; one message says what
happened, another when it is back, and each outage goes into the run's report.
A video file is paced at its own frame rate (stale frames dropped downstream like a camera's),
or read as fast as the pipeline takes it with `fast` (nothing dropped).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
from loguru import logger

from live.io.sources import (
    IMAGE_SUFFIXES,
    SourceError,
    is_camera,
    iter_video_rgb,
    read_image_rgb,
    video_fps,
)
from live.pipeline.messages import Captured
from live.pipeline.slots import Closed, LatestSlot
from live.tracking.track_file import is_track_file, read_track

SYNTHETIC = "synthetic"
FEED = "feed"           # frames put into a LatestSlot by someone else: (time s, RGB image, perf_counter when received)
MAX_RETRY_S = 8.0       # the longest wait between attempts to reopen a lost camera


def open_camera_device(device: int | str):
    """The camera as OpenCV opens it (the one place a device is opened: tests put a camera here that fails)."""
    import cv2
    return cv2.VideoCapture(device)


def camera_available(index: int = 0) -> bool:
    import sys

    import cv2
    if sys.platform.startswith("linux") and not Path(f"/dev/video{index}").exists():
        return False  # no device node: skip OpenCV's probing (and its warnings)
    cap = cv2.VideoCapture(index)
    ok = cap.isOpened()
    cap.release()
    return ok


def resolve_source(spec: str) -> str:
    """'auto' -> camera 0 if one opens, else the synthetic driver; otherwise check the spec."""
    if spec == "auto":
        if camera_available(0):
            return "0"
        logger.warning("no camera found: driving the avatar with a built-in synthetic motion (head turns, nods, "
                       "talking, blinks). Give --source 0 (a camera), a video file or a photo to drive it yourself.")
        return SYNTHETIC
    if spec == SYNTHETIC or is_camera(spec):
        return spec
    if not Path(spec).exists():
        raise SourceError(f"source {spec!r} is neither a camera index, /dev/videoN, nor an existing file")
    return spec


class DeliveredInterval:
    """The source's frame interval as delivered: the median of the last 30 steps between source time stamps (a
    camera may deliver fewer frames than asked for in low light, a browser feed fewer than the config says)."""

    def __init__(self):
        self._times: list[float] = []

    def __call__(self, t: float) -> float | None:
        """Add one frame's source time stamp; the interval, once five steps are known (None before)."""
        self._times = (self._times + [t])[-31:]
        steps = np.diff(self._times)
        steps = steps[steps > 0]
        return float(np.median(steps)) if len(steps) >= 5 else None


class CaptureStage(threading.Thread):
    def __init__(self, spec: str, out: LatestSlot, fps: float, fast: bool = False, loop: bool = False,
                 camera_size=(640, 480), camera_fps: float = 30.0, mjpg: bool = True, retry_s: float = 1.0,
                 feed: LatestSlot | None = None):
        super().__init__(name="capture", daemon=True)
        self.spec, self.out, self.fps, self.fast, self.loop = spec, out, fps, fast, loop
        self.feed = feed
        self.camera_size, self.camera_fps, self.mjpg, self.retry_s = camera_size, camera_fps, mjpg, retry_s
        self.stop_event = threading.Event()
        self.frames = 0           # frames read from the source (or made by the clock)
        self._delivered = DeliveredInterval()     # over every frame read: stages downstream budget with it
        self.dropped_at_stop = 0  # read while the run was stopping, never handed on
        self.outages: list[dict] = []   # {at_s, seconds, frames, ended}: the camera delivered nothing
        self.error: BaseException | None = None
        if (spec == FEED) != (feed is not None):
            raise ValueError("a feed source needs its feed, and only it takes one")
        self.kind = ("synthetic" if spec == SYNTHETIC else "feed" if spec == FEED else "camera" if is_camera(spec)
                     else "image" if Path(spec).suffix.lower() in IMAGE_SUFFIXES
                     else "track" if is_track_file(spec) else "video")

    def stop(self) -> None:
        self.stop_event.set()

    def _emit(self, index: int, t: float, image, params: np.ndarray | None = None,
              captured_at: float | None = None, interval: float | None = None) -> None:
        """Hands a frame on; `interval`: the source's own measure of its frame interval (a feed's filler sees frames
        this thread never gets), else measured here over every frame read."""
        self.frames += 1
        stamp = time.perf_counter() if captured_at is None else captured_at
        interval = self._delivered(t) if interval is None else interval
        try:
            self.out.put(Captured(index, t, image, {"capture": stamp}, params, interval))
        except Closed:
            self.dropped_at_stop += 1
            raise

    def run(self) -> None:
        try:
            {"synthetic": self._run_clock, "image": self._run_image, "video": self._run_video,
             "track": self._run_track, "camera": self._run_camera, "feed": self._run_feed}[self.kind]()
        except Closed:
            pass
        except BaseException as e:  # reported by the loop, which stops cleanly
            self.error = e
        finally:
            self.out.close()

    def _paced(self):
        """Yields (index, t) at the output rate until stopped."""
        start = time.perf_counter()
        k = 0
        while not self.stop_event.is_set():
            due = start + k / self.fps
            delay = due - time.perf_counter()
            if delay > 0 and not self.fast:
                time.sleep(delay)
            yield k, k / self.fps
            k += 1

    def _run_clock(self) -> None:
        for k, t in self._paced():
            self._emit(k, t, None)

    def _run_image(self) -> None:
        image = read_image_rgb(self.spec)
        for k, t in self._paced():
            self._emit(k, t, image)

    def _replay(self, frames, fps: float) -> None:
        """A recording's frames (time, image, parameters), each handed on at its own time from the start (as
        a camera would deliver it) unless `fast`; from the top again after the end if `loop`."""
        offset, k_total = 0.0, 0
        while not self.stop_event.is_set():
            start = time.perf_counter()
            last_t = 0.0
            for t, image, params in frames():
                if self.stop_event.is_set():
                    return
                if not self.fast:
                    delay = start + t - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                self._emit(k_total, offset + t, image, params)
                k_total += 1
                last_t = t
            if not self.loop:
                return
            offset += last_t + 1.0 / fps

    def _run_feed(self) -> None:
        """Frames as the feed's filler delivers them (it keeps only the newest: a slow loop skips stale ones),
        until the feed closes (the browser left) or the run stops. Latency counts from their arrival."""
        k = 0
        while not self.stop_event.is_set():
            try:
                t, image, received_at, interval = self.feed.get(timeout=0.1)
            except TimeoutError:
                continue
            self._emit(k, t, image, captured_at=received_at, interval=interval)
            k += 1

    def _run_video(self) -> None:
        self._replay(lambda: ((t, frame, None) for _, t, frame in iter_video_rgb(self.spec)),
                     video_fps(self.spec) or self.fps)

    def _run_track(self) -> None:
        """A face-parameter track recorded by `live track`: the parameters replace tracking (no image)."""
        track = read_track(self.spec)
        self._replay(lambda: ((float(t), None, p) for t, p in zip(track.times, track.params)), track.fps)

    def _open_camera(self):
        import cv2
        device = int(self.spec) if self.spec.isdigit() else self.spec
        try:
            cap = open_camera_device(device)
        except Exception as e:              # a driver that raises instead of reporting "not opened"
            logger.debug("opening camera {} raised {}", self.spec, e)
            return None
        if not cap.isOpened():
            cap.release()
            return None
        if self.mjpg:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*"MJPG"))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(self.camera_size[0]))
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(self.camera_size[1]))
        cap.set(cv2.CAP_PROP_FPS, self.camera_fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # the driver's own queue would add latency
        return cap

    def _run_camera(self) -> None:
        import cv2
        start = time.perf_counter()
        k = 0
        cap = self._open_camera()
        for _ in range(2):  # a camera still held by another program often frees up within seconds
            if cap is not None or self.stop_event.is_set():
                break
            logger.warning("camera {} is busy or missing; trying again in {:.0f} s", self.spec, self.retry_s)
            time.sleep(self.retry_s)
            cap = self._open_camera()
        if cap is None:
            raise SourceError(f"camera {self.spec} could not be opened: check it is connected, not used by another "
                              f"program (close Zoom/Meet's own preview), and that you may use it (Linux: the "
                              f"'video' group)")
        lost_at, wait = None, self.retry_s
        try:
            while not self.stop_event.is_set():
                ok, frame = self._read(cap)
                now = time.perf_counter()
                if ok:
                    if lost_at is not None:
                        logger.info("camera {} is back after {:.1f} s", self.spec, now - lost_at)
                        self.outages[-1].update(seconds=round(now - lost_at, 2), ended=True)
                        lost_at, wait = None, self.retry_s
                    self._emit(k, now - start, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                    k += 1
                    continue
                if lost_at is None:
                    lost_at = now
                    self.outages.append({"at_s": round(now - start, 2), "seconds": 0.0, "frames": 0, "ended": False})
                    logger.error("camera {} stopped delivering frames (unplugged, or taken by another program); "
                                 "retrying, the avatar holds and then eases to its neutral pose meanwhile", self.spec)
                if cap is not None:
                    cap.release()
                    cap = None
                # keep the output alive with empty frames while waiting to reopen, longer after each failure
                retry_at = time.perf_counter() + wait
                while time.perf_counter() < retry_at and not self.stop_event.is_set():
                    self._emit(k, time.perf_counter() - start, None)
                    k += 1
                    self.outages[-1]["frames"] += 1
                    self.outages[-1]["seconds"] = round(time.perf_counter() - lost_at, 2)
                    time.sleep(1.0 / self.fps)
                cap = self._open_camera()
                wait = min(wait * 2, MAX_RETRY_S)
        finally:
            if cap is not None:
                cap.release()

    @staticmethod
    def _read(cap) -> tuple[bool, object]:
        """(ok, BGR frame): a read that raises (a driver's error as the device goes) counts as a failed one."""
        if cap is None:
            return False, None
        try:
            ok, frame = cap.read()
        except Exception as e:
            logger.debug("camera read raised {}", e)
            return False, None
        return bool(ok) and frame is not None, frame


def synthetic_params(t: float) -> np.ndarray:
    """A driver's face parameters at time t (s) for the synthetic motion: head turns and nods,
    talking (jaw), a smile now and then, blinks every 3 s. Raw units: degrees and standard deviations."""
    p = np.zeros(15)
    p[0] = 15 * np.sin(2 * np.pi * t / 6.0)            # yaw
    p[1] = 8 * np.sin(2 * np.pi * t / 4.0 + 1.0)        # pitch
    p[2] = 5 * np.sin(2 * np.pi * t / 7.0 + 2.0)        # roll
    p[3] = 1.5 * max(0.0, np.sin(2 * np.pi * t * 1.7))  # jaw: talking
    p[4] = p[5] = 1.0 * max(0.0, np.sin(2 * np.pi * t / 5.0))  # smile
    blink = (t % 3.0) < 0.15
    p[11] = p[12] = 2.5 if blink else 0.0
    return p
