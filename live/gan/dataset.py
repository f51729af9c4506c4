"""Talking-head video -> a folder of face crops for GAN training (`live gan dataset`).

Per clip: every frame is tracked (the #3 tracker, video mode), the generator's framing gives a
crop per frame (models/framing.py), and the crop's centre, size and angle are smoothed over
time (Gaussian, `smooth_s` seconds) before cutting, so the crop stays steady and the head
moves inside it, as in VoxCeleb-style training crops, instead of being re-centred every frame.
Frames without a face are skipped (and split the smoothing, so a crop never drifts across a
gap); near-identical frames (the 95th percentile of the absolute difference of 32x32 grey
thumbnails from the last kept one below `dedupe` grey levels: a mouth that moves counts,
codec noise does not) are skipped too. Writes PNGs and `dataset.json`
(source, frame, crop matrix for every image).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from live.options import option
from models.atomic_files import write_image_atomic, write_text_atomic
from models.framing import FRAMINGS, CropTransform, crop_transform


@dataclass
class DatasetOptions:
    size: int = option(256, "crop size in pixels")
    framing: str = option("voxceleb", "the crop of the generator to train", choices=FRAMINGS)
    smooth_s: float = option(0.5, "crop smoothing over time (Gaussian sigma), seconds", name="smooth", metavar="S")
    dedupe: float = option(3.0, "skip frames closer than this (grey levels, 95th percentile of the difference) "
                           "to the last kept one; 0 keeps all")
    every: int = option(1, "use every Nth frame", metavar="N")
    max_frames: int | None = option(None, "frames per clip at most; none: all", metavar="N")


@dataclass
class DatasetReport:
    clips: int
    frames: int
    with_face: int
    duplicates: int
    written: int


def _decompose(m: np.ndarray, size: int) -> np.ndarray:
    """Similarity crop matrix -> (cx, cy, log side, angle) in photo space."""
    a, b = m[0, 0], m[1, 0]
    k, theta = np.hypot(a, b), np.arctan2(b, a)
    inv = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
    c = inv @ np.array([size / 2, size / 2, 1.0])
    return np.array([c[0], c[1], np.log(size / k), theta])


def _compose(v: np.ndarray, size: int) -> np.ndarray:
    cx, cy, log_side, theta = v
    k = size / np.exp(log_side)
    r = k * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return np.hstack([r, (np.array([size / 2, size / 2]) - r @ np.array([cx, cy]))[:, None]])


def smooth_track(values: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Gaussian smoothing along time of [T, D], renormalised at the ends (no pull toward zero)."""
    if sigma_frames <= 0 or len(values) < 2:
        return values
    radius = int(3 * sigma_frames)
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma_frames) ** 2)
    out = np.empty_like(values)
    for i in range(len(values)):
        lo, hi = max(0, i - radius), min(len(values), i + radius + 1)
        w = kernel[lo - i + radius: hi - i + radius]
        out[i] = (w[:, None] * values[lo:hi]).sum(0) / w.sum()
    return out


def _segments(found: np.ndarray) -> list[tuple[int, int]]:
    """Runs of consecutive True: [(start, end)), end exclusive."""
    runs, start = [], None
    for i, f in enumerate(found):
        if f and start is None:
            start = i
        elif not f and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, len(found)))
    return runs


def build_dataset(videos: list[str | Path], out: str | Path, opts: DatasetOptions, progress: bool = True) -> DatasetReport:
    import cv2
    from rich.progress import Progress

    from live.io.sources import SourceError, iter_video_rgb, video_fps
    from models.face.tracker import MediaPipeTracker

    if opts.framing not in FRAMINGS:
        raise ValueError(f"unknown framing {opts.framing!r}; choose one of {', '.join(FRAMINGS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest, totals = [], DatasetReport(0, 0, 0, 0, 0)
    with Progress(disable=not progress, transient=True) as bar:
        for video in map(Path, videos):
            if not video.is_file():
                raise SourceError(f"{video}: no such video")
            fps = video_fps(video) or 25.0
            task = bar.add_task(f"tracking {video.name}", total=None)
            frames, mats = [], []
            with MediaPipeTracker(max_faces=1, video=True) as tracker:
                for k, t, frame in iter_video_rgb(video, max_frames=opts.max_frames):
                    if k % opts.every:
                        continue
                    obs = tracker.track(frame)
                    frames.append((k, frame))
                    mats.append(_decompose(crop_transform(obs.landmarks, opts.framing, opts.size).matrix, opts.size)
                                if obs.found else None)
                    bar.advance(task)
            found = np.array([m is not None for m in mats])
            totals.clips += 1
            totals.frames += len(frames)
            totals.with_face += int(found.sum())
            last_thumb = None
            for s, e in _segments(found):
                params = np.stack(mats[s:e])
                params[:, 3] = np.unwrap(params[:, 3])
                smoothed = smooth_track(params, opts.smooth_s * fps / opts.every)
                for i in range(s, e):
                    k, frame = frames[i]
                    crop = CropTransform(_compose(smoothed[i - s], opts.size), opts.size, opts.framing).apply(frame)
                    thumb = cv2.resize(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
                    if opts.dedupe > 0 and last_thumb is not None and \
                            np.percentile(np.abs(thumb.astype(np.float32) - last_thumb), 95) < opts.dedupe:
                        totals.duplicates += 1
                        continue
                    last_thumb = thumb.astype(np.float32)
                    name = f"{video.stem}_{k:06d}.png"
                    write_image_atomic(out / name, crop)
                    manifest.append({"image": name, "source": str(video), "frame": k,
                                     "crop_matrix": np.round(_compose(smoothed[i - s], opts.size), 6).tolist()})
                    totals.written += 1
            logger.info("{}: {} frames, face in {}, {} images so far", video.name, len(frames), int(found.sum()),
                        totals.written)
    write_text_atomic(out / "dataset.json", json.dumps({"size": opts.size, "framing": opts.framing,
                                                  "options": asdict(opts), "images": manifest}, indent=1))
    return totals
