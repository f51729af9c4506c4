"""Frame sources: a webcam (index or device path), a video file, or a still image.

Every source yields (index, time in seconds, RGB uint8 frame). Problems become SourceError
with a message that says what to check.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np

from live.video import SourceError, iter_video_rgb, read_image_rgb

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def is_camera(spec: str) -> bool:
    return spec.isdigit() or spec.startswith("/dev/video")


def iter_camera(spec: str, max_frames: int | None = None,
                size: tuple[int, int] = (640, 480)) -> Iterator[tuple[int, float, np.ndarray]]:
    import cv2
    device = int(spec) if spec.isdigit() else spec
    cap = cv2.VideoCapture(device)
    if not cap.isOpened():
        raise SourceError(f"camera {spec} could not be opened: check it is connected, not used by another "
                          f"program, and that you may use it (Linux: the 'video' group)")
    cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
    cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
    start = time.perf_counter()
    k = 0
    try:
        while max_frames is None or k < max_frames:
            ok, frame = cap.read()
            if not ok:
                raise SourceError(f"camera {spec} stopped delivering frames: was it unplugged?")
            yield k, time.perf_counter() - start, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            k += 1
    finally:
        cap.release()


def iter_still(path: str | Path, frames: int, fps: float = 30.0) -> Iterator[tuple[int, float, np.ndarray]]:
    image = read_image_rgb(path)
    for k in range(frames):
        yield k, k / fps, image


def open_source(spec: str, max_frames: int | None = None, still_frames: int = 1,
                size: tuple[int, int] | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """`0` or `/dev/video0`: a camera; a .jpg/.png: a still image repeated `still_frames` times;
    anything else: a video file."""
    if is_camera(spec):
        return iter_camera(spec, max_frames)
    path = Path(spec)
    if not path.exists():
        raise SourceError(f"source {spec!r} is neither a camera index nor an existing file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return iter_still(path, still_frames)
    return iter_video_rgb(path, size=size, max_frames=max_frames)
