"""`live track`: per-frame face parameters of a source, as CSV and as an overlay video."""

from __future__ import annotations

import csv
from pathlib import Path

from loguru import logger

from live.config import LiveConfig
from live.io.sources import open_source, video_fps, video_frame_count
from live.tracking.estimator import make_estimator, make_smoother
from live.tracking.track_file import CSV_COLUMNS


def track(cfg: LiveConfig, source: str, out_csv: str | None, overlay: str | None,
          max_frames: int | None = None) -> dict:
    """Track `source` with the config's tracker and smoothing (smoothing.enabled false: the raw fit)."""
    from rich.progress import Progress

    from live.io.sinks import FileSink
    from live.tracking.overlay import draw_overlay
    estimator = make_estimator(cfg.tracking)
    smoother = make_smoother(cfg.smoothing)
    fps = video_fps(source) if Path(source).is_file() else 30.0
    total = video_frame_count(source) if Path(source).is_file() else None
    writer = FileSink(overlay, fps) if overlay else None
    csv_file = open(out_csv, "w", newline="") if out_csv else None
    rows = csv.writer(csv_file) if csv_file else None
    if rows:
        rows.writerow(CSV_COLUMNS)
    n = found = 0
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("tracking", total=max_frames or total)
            for k, t, frame in open_source(source, max_frames=max_frames):
                p = estimator(frame, k, t)
                p = smoother(p)
                n += 1
                found += p.found
                if rows:
                    rows.writerow([k, f"{t:.4f}", int(p.found), f"{p.confidence:.3f}"]
                                  + [f"{v:.4f}" if p.found else "" for v in p.params])
                if writer:
                    writer.write(draw_overlay(frame, p, estimator.model.param_range))
                bar.advance(task)
    finally:
        estimator.close()
        if writer:
            writer.close()
        if csv_file:
            csv_file.close()
    logger.info("{} frames, face found in {} ({:.0%})", n, found, found / max(n, 1))
    if out_csv:
        logger.info("parameters written to {}", out_csv)
    return {"frames": n, "found": found}
