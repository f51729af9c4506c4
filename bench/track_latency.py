"""Tracking + parameter latency per frame, and how well the One-Euro smoothing works.

Latency: each clip resampled to 640x480 (a webcam's frame), tracker + 3D fit timed per frame
with the wall clock, median and p99, after a warm-up.

Smoothing, measured on a whole clip's pose track (yaw, pitch, roll):
- still stretches: frames whose pose speed, from a 9-frame median-filtered track, stays
  under 10 deg/s for 15 consecutive frames. Jitter = mean |frame-to-frame change| there;
  reported as smoothed / raw.
- lag at fast motion: the 10% of frames with the highest pose speed. For shifts of 0..5
  frames, the correlation between the raw and the shifted smoothed velocity on those frames;
  the lag is the shift with the highest correlation (per angle; the worst is reported).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.records import append_json, default_json, machine
from live.cli.table import print_table
from live.pipeline.latency import LatencyStats

CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")


def smoothing_quality(raw_pose: np.ndarray, smoothed_pose: np.ndarray, fps: float) -> dict:
    """raw/smoothed [T, 3] in degrees -> {'jitter_ratio', 'lag_frames', 'still_frames', 'fast_frames'}."""
    from scipy.ndimage import median_filter, uniform_filter1d
    trend = median_filter(raw_pose, size=(9, 1), mode="nearest")
    speed = np.abs(np.gradient(trend, axis=0)).max(1) * fps
    still = uniform_filter1d((speed < 10).astype(float), 15) > 0.999
    pairs = still[1:] & still[:-1]
    jitter = lambda x: np.abs(np.diff(x, axis=0))[pairs].mean()  # noqa: E731
    fast = speed > np.percentile(speed, 90)
    v_raw, v_s = np.gradient(raw_pose, axis=0), np.gradient(smoothed_pose, axis=0)
    lags = []
    for j in range(raw_pose.shape[1]):
        corr = [np.corrcoef(v_raw[: len(v_raw) - s, j][fast[: len(fast) - s]],
                            v_s[s:, j][fast[: len(fast) - s]])[0, 1] for s in range(6)]
        lags.append(int(np.argmax(corr)))
    return {"jitter_ratio": float(jitter(smoothed_pose) / jitter(raw_pose)), "lag_frames": max(lags),
            "still_frames": int(still.sum()), "fast_frames": int(fast.sum())}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--media", default="../shared/media", help="folder with the clips")
    p.add_argument("--clips", nargs="+", default=list(CLIPS))
    p.add_argument("--frames", type=int, default=300, help="frames per clip at most (default 300)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--no-flip-average", action="store_true", help="track the frame only")
    p.add_argument("--json", default=default_json())


def run(args: argparse.Namespace) -> dict:
    from live.config import LiveConfig
    from live.io.sources import iter_video_rgb, video_fps
    from live.tracking.estimator import make_estimator, make_smoother
    cfg = LiveConfig()
    cfg.tracking.flip_average = not args.no_flip_average
    rows, all_ms = [], []
    for clip in args.clips:
        path = Path(args.media) / clip
        est = make_estimator(cfg.tracking)
        smoother = make_smoother(cfg.smoothing)
        ms, raw, smooth, found = [], [], [], 0
        for k, t, frame in iter_video_rgb(path, size=(640, 480), max_frames=args.frames):
            t0 = time.perf_counter()
            p = est(frame, k, t)
            s = smoother(p)
            ms.append((time.perf_counter() - t0) * 1e3)
            found += p.found
            raw.append(p.params[:3])
            smooth.append(s.params[:3])
        est.close()
        ms = ms[args.warmup:]
        all_ms += ms
        st = LatencyStats.from_ms(ms)
        row = {"clip": clip, "frames": len(raw), "found": found, "median_ms": st.median_ms, "p99_ms": st.p99_ms}
        raw, smooth = np.array(raw), np.array(smooth)
        ok = np.isfinite(raw).all(1)
        if ok.sum() > 60:
            row.update(smoothing_quality(raw[ok], smooth[ok], video_fps(path)))
        rows.append(row)
    total = LatencyStats.from_ms(all_ms)
    record = {"bench": "track", "flip_average": cfg.tracking.flip_average, "resolution": "640x480",
              "median_ms": total.median_ms, "p99_ms": total.p99_ms, "clips": rows, "machine": machine()}
    append_json(args.json, record)
    print_table(f"tracking + parameters per frame, 640x480 ({record['machine']['cpu']}, "
                f"flip average {'on' if record['flip_average'] else 'off'})",
                rows + [{"clip": "all", "frames": sum(r["frames"] for r in rows), "median_ms": total.median_ms,
                         "p99_ms": total.p99_ms}],
                [("clip", "clip"), ("frames", "frames"), ("found", "found"), ("median_ms", "median ms"),
                 ("p99_ms", "p99 ms"), ("jitter_ratio", "still jitter / raw"), ("lag_frames", "lag frames")])
    return record
