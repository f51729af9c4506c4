"""The file sink: an mp4 that stays playable whatever stops it.

H.264 (x264's fastest preset: about the cost of OpenCV's MPEG-4 writer; MPEG-4 part 2 where the
FFmpeg build has no x264) in a fragmented mp4: the file's index is written up front and each
second of video is a fragment complete in itself, so a run killed, or a disk that fills, leaves
a file that plays up to its last whole second (a plain mp4 keeps its index for the end: cut, it
plays nothing). Written through PyAV, whose writes report their errors: a full disk is an error
here, where OpenCV's writer drops frames silently.
"""

from __future__ import annotations

import contextlib
import functools
from fractions import Fraction
from pathlib import Path

import numpy as np
from loguru import logger

from live.io.sink_base import Sink, SinkError, side_by_side
from models.errors import first_line

FRAGMENTED = "frag_keyframe+empty_moov+default_base_moof"
MP4_SUFFIXES = (".mp4", ".m4v", ".mov")
MP4_BOXES = (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip")     # what an MP4 or QuickTime file starts with


def check_video_path(path: Path) -> None:
    """A path the file sink may write to, else SinkError saying why: an MP4 name (or none: a device such as
    /dev/full), and no existing file that is something else (an avatar named by mistake is not overwritten)."""
    if path.is_dir():
        raise SinkError(f"{path} is a folder; give a file path ending in .mp4")
    if path.suffix and path.suffix.lower() not in MP4_SUFFIXES:
        raise SinkError(f"{path}: the file sink writes MP4 video; give a path ending in .mp4")
    if path.is_file() and path.stat().st_size > 0 and not str(path).startswith("/dev/"):
        with open(path, "rb") as f:
            head = f.read(12)
        if head[4:8] not in MP4_BOXES:
            raise SinkError(f"{path} exists and is not an MP4 video; it is left as it is: give another path")


@functools.cache
def video_codec() -> tuple[str, dict]:
    import av
    try:
        av.codec.Codec("libx264", "w")
        return "libx264", {"preset": "ultrafast"}
    except Exception:                 # an FFmpeg build without x264
        return "mpeg4", {}


class FileSink(Sink):
    """An mp4 file at the source's frame rate; opened on the first frame, when the size is known.
    Frames with a time are placed at it: a frame the loop dropped is filled by holding the one before
    (as a recording of a live call would show it), so the file plays at the source's speed.
    `with_driver` puts the driving frame beside the avatar. A write that fails (disk full, device gone)
    raises SinkError saying how much of the file is kept; the file is closed as far as it can be."""
    name = "file"

    def __init__(self, path: str | Path, fps: float, with_driver: bool = False):
        self.path, self.fps, self.with_driver = Path(path), fps, with_driver
        check_video_path(self.path)
        self.container = self.stream = None
        self.file_frames = 0           # frames in the file (a held frame counts each time)
        self._t0: float | None = None

    def _open(self, width: int, height: int) -> None:
        import av
        self.path.parent.mkdir(parents=True, exist_ok=True)
        codec, options = video_codec()
        try:
            self.container = av.open(str(self.path), mode="w", format="mp4", options={"movflags": FRAGMENTED})
            self.stream = self.container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001),
                                                    options=options)
            self.stream.width, self.stream.height = width, height
            self.stream.pix_fmt = "yuv420p"
            # a key frame, so a fragment, every second: a cut file loses at most its last second
            self.stream.codec_context.gop_size = max(int(round(self.fps)), 1)
            # two encoder threads: x264 would start one per core, competing with tracking and rendering
            self.stream.codec_context.thread_count = 2
        except Exception as e:
            self._abandon()
            raise SinkError(f"cannot write video file {self.path} ({first_line(e, 160)}): check the folder exists "
                            f"and is writable") from None

    def write(self, frame_rgb: np.ndarray, driver: np.ndarray | None = None, t: float | None = None) -> None:
        import av
        if self.with_driver:
            frame_rgb = side_by_side(driver, frame_rgb)
        h, w = frame_rgb.shape[:2]
        frame_rgb = frame_rgb[:h - h % 2, :w - w % 2]           # 4:2:0 video needs even sides
        if self.container is None:
            self._open(frame_rgb.shape[1], frame_rgb.shape[0])
        copies = 1
        if t is not None:
            self._t0 = t if self._t0 is None else self._t0
            copies = round((t - self._t0) * self.fps) + 1 - self.file_frames   # up to this frame's place
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_rgb), format="rgb24")
        try:
            for _ in range(max(copies, 0)):
                frame.pts = self.file_frames
                self.container.mux(self.stream.encode(frame))
                self.file_frames += 1
        except Exception as e:
            kept = self.file_frames
            self._abandon()
            raise SinkError(f"writing {self.path} failed after {kept} frame{'s' * (kept != 1)} ({first_line(e, 160)}: "
                            f"is the disk full?); the file is closed and plays up to its last whole second") from None
        self.frames_written += 1

    def _abandon(self) -> None:
        """Close what can be closed after a failed write (the trailer may not fit: the fragments already
        written play without it)."""
        container, self.container = self.container, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.close()

    def close(self) -> None:
        if self.container is None:
            return
        try:
            self.container.mux(self.stream.encode())       # the encoder's last frames
            self.container.close()
        except Exception as e:
            logger.error("finishing {} failed ({}); it plays up to its last whole second", self.path,
                         first_line(e, 160))
            self._abandon()
            return
        self.container = None
        held = self.file_frames - self.frames_written
        logger.info("wrote {} frames to {} at {:g} fps{}", self.file_frames, self.path, self.fps,
                    f" ({self.frames_written} from the loop, {held} repeated where it dropped one: the file plays "
                    f"at the source's speed)" if held > 0 else "")
