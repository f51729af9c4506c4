"""Where finished frames go: a virtual camera, a preview window, an mp4 file, or nowhere.

Every sink takes HxWx3 uint8 RGB frames (`write(frame, driver=None, t=None)`; the driver frame
is used by sinks that show it beside the avatar, t is the frame's time in the source, in seconds)
and is closed once. A sink whose device is missing
says exactly how to set it up; `open_sinks` then falls back to the preview so the run goes on.
"""

from __future__ import annotations

import os
import platform
import sys

import numpy as np
from loguru import logger

from live.io.sink_base import Sink, SinkError, side_by_side  # noqa: F401  (the sinks' API)
from live.io.video_file import FileSink
from models.errors import first_line


class NullSink(Sink):
    """Discards frames (for benchmarks and headless checks)."""
    name = "null"

    def write(self, frame_rgb: np.ndarray, driver: np.ndarray | None = None, t: float | None = None) -> None:
        self.frames_written += 1


# What loads the virtual camera on Linux so call apps list it (Chrome and Meet need exclusive_caps).
LOAD_LOOPBACK = 'sudo modprobe v4l2loopback devices=1 exclusive_caps=1 card_label="live"'


def vcam_setup_hint() -> str:
    system = platform.system()
    if system == "Linux":
        return ("no virtual camera device. Install and load v4l2loopback, then run again:\n"
                "  sudo apt install v4l2loopback-dkms   # or your distribution's package\n"
                f"  {LOAD_LOOPBACK}\n"
                "The camera 'live' then appears in Zoom, Meet, Teams and OBS.")
    if system in ("Windows", "Darwin"):
        return ("no virtual camera: install OBS Studio (28 or newer) and start its virtual camera once "
                "(Start Virtual Camera, then Stop), then run again; pick 'OBS Virtual Camera' in the call app.")
    return f"no virtual camera backend for {system}"


class VirtualCameraSink(Sink):
    """pyvirtualcam: v4l2loopback on Linux, OBS's virtual camera on Windows and macOS."""
    name = "vcam"

    def __init__(self, size: tuple[int, int], fps: float, device: str | None = None):
        try:
            import pyvirtualcam
        except ImportError as e:
            raise SinkError(f"pyvirtualcam is not installed ({e}); pip install pyvirtualcam") from None
        self.size = (int(size[0]), int(size[1]))
        try:
            self.cam = pyvirtualcam.Camera(width=self.size[0], height=self.size[1], fps=fps,
                                           fmt=pyvirtualcam.PixelFormat.RGB, device=device, print_fps=False)
        except Exception as e:  # pyvirtualcam raises RuntimeError/ValueError with backend messages
            raise SinkError(f"{vcam_setup_hint()}\n(pyvirtualcam: {first_line(e, 200)})") from None
        logger.info("virtual camera: {} ({}x{} @ {:g} fps)", self.cam.device, *self.size, fps)

    def write(self, frame_rgb: np.ndarray, driver: np.ndarray | None = None, t: float | None = None) -> None:
        if frame_rgb.shape[1::-1] != self.size:
            import cv2
            frame_rgb = cv2.resize(frame_rgb, self.size, interpolation=cv2.INTER_LINEAR)
        self.cam.send(np.ascontiguousarray(frame_rgb))
        self.frames_written += 1

    def close(self) -> None:
        self.cam.close()


def display_available() -> bool:
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


class WindowSink(Sink):
    """OpenCV preview: driver and avatar side by side, optional HUD; keys go to `controls`:
    c recalibrate, space freeze, r relative/absolute, h HUD, q quit. Without a display it does
    nothing (one message), so headless runs need no flag."""
    name = "window"
    TITLE = "live (c: recalibrate, space: freeze, r: relative/absolute, h: HUD, q: quit)"

    def __init__(self, controls=None, hud_text=None):
        self.controls, self.hud_text = controls, hud_text
        self.enabled = self.delivers = display_available()     # without one, open_sinks says what happens

    def write(self, frame_rgb: np.ndarray, driver: np.ndarray | None = None, t: float | None = None) -> None:
        self.frames_written += 1
        if not self.enabled:
            return
        import cv2
        view = side_by_side(driver, frame_rgb)[:, :, ::-1].copy()
        if self.controls is not None and self.controls.hud and self.hud_text is not None:
            for i, line in enumerate(self.hud_text()):
                cv2.putText(view, line, (10, 22 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA)
        try:
            cv2.imshow(self.TITLE, view)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as e:
            logger.warning("preview window unavailable ({}); continuing without it", first_line(e, 120))
            self.enabled = False
            return
        if self.controls is None or key == 255:
            return
        if key == ord("q"):
            self.controls.quit = True
        elif key == ord("c"):
            self.controls.recalibrate = True
        elif key == ord(" "):
            self.controls.frozen = not self.controls.frozen
        elif key == ord("r"):
            self.controls.absolute = not self.controls.absolute
            logger.info("mode: {}", "absolute (the driver's pose)" if self.controls.absolute else "relative motion")
        elif key == ord("h"):
            self.controls.hud = not self.controls.hud

    def close(self) -> None:
        if self.enabled:
            import cv2
            cv2.destroyAllWindows()


def make_sink(spec: str, fps: float, size: tuple[int, int] = (512, 512), vcam_device: str | None = None,
              controls=None, hud_text=None) -> Sink:
    """`null`, `file:PATH`, `file+driver:PATH`, `vcam`, `window`."""
    kind, _, arg = spec.partition(":")
    if kind == "null":
        return NullSink()
    if kind in ("file", "file+driver"):
        if not arg:
            raise SinkError(f"{kind} sink needs a path: {kind}:out.mp4")
        return FileSink(arg, fps, with_driver=(kind == "file+driver"))
    if kind == "vcam":
        return VirtualCameraSink(size, fps, vcam_device or (arg or None))
    if kind == "window":
        return WindowSink(controls, hud_text)
    raise SinkError(f"unknown sink {spec!r}; use vcam, window, file:PATH.mp4, file+driver:PATH.mp4 or null")


def open_sinks(specs: list[str], fps: float, size: tuple[int, int], vcam_device: str | None = None,
               controls=None, hud_text=None) -> list[Sink]:
    """Open every sink. A virtual camera that cannot open is replaced by the preview window (its set-up
    command is logged); if nothing is left that delivers frames anywhere (no camera, no display, no
    file), the run stops with one line saying why and what to do, instead of running into nothing."""
    sinks: list[Sink] = []
    vcam_problem = None
    for spec in specs:
        try:
            sinks.append(make_sink(spec, fps, size, vcam_device, controls, hud_text))
        except SinkError as e:
            if not spec.startswith("vcam"):
                for s in sinks:
                    s.close()
                raise
            vcam_problem = str(e)
            if not any(isinstance(s, WindowSink) for s in sinks) and "window" not in specs:
                sinks.append(WindowSink(controls, hud_text))
    if not any(s.delivers for s in sinks):
        for s in sinks:
            s.close()
        if vcam_problem:
            raise SinkError("no virtual camera and no display for the preview: no frame would go anywhere. "
                            f"Set up the camera ({vcam_setup_command()}) or write a file: --sink file:out.mp4")
        raise SinkError("no display for the preview window: no frame would go anywhere. Write a file "
                        "(--sink file:out.mp4) or send to a virtual camera (--sink vcam)")
    if vcam_problem:
        logger.error("virtual camera unavailable, showing the preview window instead: {}", vcam_problem)
    if any(isinstance(s, WindowSink) and not s.enabled for s in sinks):
        logger.info("no display: the preview window is off; frames go to {}",
                    ", ".join(s.name for s in sinks if s.delivers))
    return sinks


def vcam_setup_command() -> str:
    """The one command (or step) that makes a virtual camera appear on this system."""
    if platform.system() == "Linux":
        return f"{LOAD_LOOPBACK}, from the v4l2loopback-dkms package"
    return "install OBS Studio 28+, start and stop its virtual camera once"
