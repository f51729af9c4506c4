"""Where finished frames go. Each sink takes HxWx3 uint8 RGB frames and is closed once."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from loguru import logger


class SinkError(RuntimeError):
    """A sink that cannot be opened or written; the message says what to do."""


class Sink(ABC):
    frames_written = 0

    @abstractmethod
    def write(self, frame_rgb: np.ndarray) -> None: ...

    def close(self) -> None:
        pass


class NullSink(Sink):
    """Discards frames (for benchmarks and headless checks)."""

    def write(self, frame_rgb: np.ndarray) -> None:
        self.frames_written += 1


class FileSink(Sink):
    """An mp4 file; opened on the first frame, when the size is known."""

    def __init__(self, path: str | Path, fps: float):
        self.path, self.fps = Path(path), fps
        self.writer = None

    def write(self, frame_rgb: np.ndarray) -> None:
        import cv2
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame_rgb.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self.writer.isOpened():
                raise SinkError(f"cannot write video file {self.path}: check the folder exists and is writable")
        self.writer.write(np.ascontiguousarray(frame_rgb[:, :, ::-1]))
        self.frames_written += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            logger.info("wrote {} frames to {}", self.frames_written, self.path)


def make_sink(spec: str, fps: float) -> Sink:
    """`null` or `file:PATH`."""
    kind, _, arg = spec.partition(":")
    if kind == "null":
        return NullSink()
    if kind == "file":
        if not arg:
            raise SinkError("file sink needs a path: file:out.mp4")
        return FileSink(arg, fps)
    raise SinkError(f"unknown sink {spec!r}; available now: null, file:PATH.mp4")
