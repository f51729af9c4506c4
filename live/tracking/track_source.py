"""`live track`: per-frame face parameters of a source, as CSV and as an overlay video."""

from __future__ import annotations

import contextlib
import csv
from pathlib import Path

from loguru import logger

from live.config import LiveConfig
from live.io.sink_base import SinkError
from live.io.sources import open_source, video_fps, video_frame_count
from live.tracking.estimator import make_estimator, make_smoother
from live.tracking.track_file import CSV_COLUMNS
from models.atomic_files import atomic_path


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
    n = found = 0
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(estimator.close)
        if writer:
            cleanup.callback(writer.close)
        rows = None
        if out_csv:   # it appears under its name only once whole; a run stopped with Ctrl-C keeps what it tracked
            csv_file = cleanup.enter_context(open(cleanup.enter_context(atomic_path(out_csv)), "w", newline=""))
            rows = csv.writer(csv_file)
            rows.writerow(CSV_COLUMNS)
        try:
            with Progress(transient=True) as bar:
                task = bar.add_task("tracking", total=max_frames or total)
                for k, t, frame in open_source(source, max_frames=max_frames):
                    p = smoother(estimator(frame, k, t))
                    n += 1
                    found += p.found
                    if rows:
                        rows.writerow([k, f"{t:.4f}", int(p.found), f"{p.confidence:.3f}"]
                                      + [f"{v:.4f}" if p.found else "" for v in p.params])
                    if writer:
                        try:
                            writer.write(draw_overlay(frame, p, estimator.model.param_range))
                        except SinkError as e:      # the overlay's fault (a full disk): the parameters go on
                            logger.error("the overlay video stops: {}; tracking goes on", e)
                            writer = None
                    bar.advance(task)
        except KeyboardInterrupt:
            logger.info("stopped by the user after {} frames", n)
    logger.info("{} frames, face found in {} ({:.0%})", n, found, found / max(n, 1))
    if out_csv:
        logger.info("parameters written to {}", out_csv)
    return {"frames": n, "found": found}
