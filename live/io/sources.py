"""Frame sources: a webcam (index or device path), a video file, or a still image.

Every source yields (index, time in seconds, RGB uint8 frame). Problems become SourceError
with a message that says what to check.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
IMAGE_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"RIFF": "WebP"}


def image_kind(data: bytes) -> str | None:
    """"JPEG", "PNG" or "WebP" by the file's own signature (its first 12 bytes are enough), else None."""
    for signature, kind in IMAGE_SIGNATURES.items():
        if data.startswith(signature) and (kind != "WebP" or data[8:12] == b"WEBP"):
            return kind
    return None


class SourceError(RuntimeError):
    """A source that cannot be opened or read; the message says what to check."""


def read_image_rgb(path: str | Path) -> np.ndarray:
    """A photo as RGB, or SourceError saying what is wrong with the file (missing, a folder, empty, cut short, not
    an image). A JPEG or PNG cut short is refused before decoding: decoded, its missing part is grey."""
    import cv2
    path = Path(path)
    if path.is_dir():
        raise SourceError(f"cannot read image {path}: it is a folder; give a photo (JPEG, PNG or WebP)")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SourceError(f"cannot read image {path}: {e.strerror or e}; check the path") from None
    if not data:
        raise SourceError(f"cannot read image {path}: the file is empty")
    if _cut_short(data):
        raise SourceError(f"cannot read image {path}: the file is cut short (damaged, or not fully downloaded or "
                          f"copied); use the whole photo")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise SourceError(f"cannot read image {path}: it is not a JPEG, PNG or WebP image (or it is damaged)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _cut_short(data: bytes) -> bool:
    """Whether a JPEG or PNG file ends before its image does. Whatever follows the image's end is allowed (a phone's
    motion photo carries a whole video after its JPEG; a cropped screenshot may keep old data after its PNG)."""
    kind = image_kind(data)
    if kind == "JPEG":
        # the end marker after the first scan's start: inside the compressed data 0xFF is escaped, and the EXIF
        # thumbnail's own end marker comes before the scan
        scan = data.find(b"\xff\xda")
        return scan < 0 or data.find(b"\xff\xd9", scan) < 0
    if kind == "PNG":
        at = 8
        while at + 8 <= len(data):                  # chunks: length, type, data, CRC
            length, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
            if kind == b"IEND":
                return False
            at += 12 + length
        return True
    return False


def letterbox(frame: np.ndarray, size: tuple[int, int], fill: int = 0) -> np.ndarray:
    """Scale to fit size=(w, h) keeping the aspect ratio, centred on a `fill` background."""
    import cv2
    w, h = size
    fh, fw = frame.shape[:2]
    f = min(w / fw, h / fh)
    nw, nh = round(fw * f), round(fh * f)
    if (nw, nh) == (fw, fh) == (w, h):
        return frame                      # already the output's size (the warp draws at it): no copy
    out = np.full((h, w, 3), fill, dtype=frame.dtype)
    x0, y0 = (w - nw) // 2, (h - nh) // 2
    if (nw, nh) == (fw, fh):
        out[y0:y0 + nh, x0:x0 + nw] = frame
    else:
        # shrinking averages (no aliasing); growing (a slow machine's smaller warp frame) interpolates
        grow = nw > fw or nh > fh
        out[y0:y0 + nh, x0:x0 + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR if grow else cv2.INTER_AREA)
    return out


def iter_video_rgb(path: str | Path, size: tuple[int, int] | None = None,
                   max_frames: int | None = None) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield (index, time in s, RGB frame), optionally letterboxed to size=(w, h)."""
    import cv2
    if not Path(path).is_file():
        raise SourceError(f"no such video file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise SourceError(f"cannot open video {path}: unsupported or damaged file")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    try:
        k = 0
        while max_frames is None or k < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if size is not None:
                frame = letterbox(frame, size)
            yield k, k / fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            k += 1
    finally:
        cap.release()


def video_fps(path: str | Path) -> float:
    import cv2
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    cap.release()
    return float(fps)


def video_frame_count(path: str | Path) -> int:
    import cv2
    cap = cv2.VideoCapture(str(path))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return max(n, 0)


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
