"""The whole live loop, timed per frame: per-stage latency, added latency, fps, drops, and a plot.

Runs `live run` with the given avatar (or the demo scene: a random face of --arch with demo
directions) driven by a clip paced at its own frame rate, as a camera would deliver it, into
a null sink. Per frame: tracking (track + 3D fit + smoothing), render (latent blend, synthesis,
post-process, copy to the host), sinks, and the added latency (captured -> handed to the sinks).
Writes the JSON record, a table, and a PNG of the added latency of every frame.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.records import append_json, default_json, machine, results_dir
from live.cli.table import print_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", help="generator (default: random weights of --arch)")
    p.add_argument("--arch", default="vox256", help="architecture of random weights (default vox256 = 256 px cm1)")
    p.add_argument("--avatar", "-a", help="avatar file (default: a random face)")
    p.add_argument("--directions", "-d", help="direction matrix (default: demo directions)")
    p.add_argument("--source", default="../shared/media/lp_d6.mp4", help="driving clip (paced at its fps)")
    p.add_argument("--frames", type=int, default=300, help="output frames to time")
    p.add_argument("--backend", default="auto",
                   help="synthesis backend; several, comma-separated (compiled,openvino), are run in turn, "
                        "--repeat times, alternating, and compared side by side")
    p.add_argument("--precision", default="auto")
    p.add_argument("--threads", type=int, default=0, help="openvino/onnxruntime threads (0: the loop's default)")
    p.add_argument("--repeat", type=int, default=1, help="runs per backend when comparing (alternating)")
    p.add_argument("--device", default="auto")
    p.add_argument("--size", default="512x512", help="output size")
    p.add_argument("--fast", action="store_true", help="unpaced, nothing dropped (throughput rather than latency)")
    p.add_argument("--no-adapt", dest="adapt", action="store_false",
                   help="never make tracking cheaper when it cannot keep up (run.adapt off), to compare")
    p.add_argument("--mouth", default="driver", choices=["driver", "drawn"],
                   help="warp avatars: a closed photo mouth's inside, the driver's own or drawn (run.mouth)")
    p.add_argument("--plot", default=str(results_dir() / "pipeline_latency.png"), help="PNG of per-frame added latency")
    p.add_argument("--json", default=default_json())


def _draw_series(img, box, t, values, lo: float, hi: float, t0: float, span: float, colour) -> None:
    """A line of values over time inside box = (x0, y0, x1, y1), with three labelled grid lines."""
    import cv2
    x0, y0, x1, y1 = box
    cv2.rectangle(img, (x0, y0), (x1, y1), (0, 0, 0), 1)
    for frac in (0.25, 0.5, 0.75):
        y = int(y1 - frac * (y1 - y0))
        cv2.line(img, (x0, y), (x1, y), (220, 220, 220), 1)
        cv2.putText(img, f"{lo + frac * (hi - lo):.0f}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    xy = np.stack([x0 + (t - t0) / span * (x1 - x0), y1 - (values - lo) / (hi - lo) * (y1 - y0)], 1)
    cv2.polylines(img, [xy.astype(np.int32).reshape(-1, 1, 2)], False, colour, 1, cv2.LINE_AA)


def plot_latency(per_frame: list, path: str | Path, title: str, memory: list | None = None) -> Path:
    """Added latency (ms) of every written frame against its capture time, and below it the resident
    memory (MB) sampled during the run when given: the two things that must not grow. Drawn with OpenCV."""
    import cv2
    t = np.array([f[1] for f in per_frame])
    ms = np.array([f[2] for f in per_frame])
    mem = np.array(memory, dtype=np.float64) if memory is not None and len(memory) >= 2 else None
    W, m, panel = 900, 50, 260
    H = m + panel + m + (panel // 2 + m if mem is not None else 0)
    img = np.full((H, W, 3), 255, np.uint8)
    top = max(float(np.percentile(ms, 99.5)) * 1.15, 1.0)
    span = max(float(t.max() - t.min()), 1e-6)
    med = float(np.median(ms))
    _draw_series(img, (m, m, W - m, m + panel), t, ms, 0.0, top, float(t.min()), span, (200, 60, 0))
    ym = int(m + panel - med / top * panel)
    cv2.line(img, (m, ym), (W - m, ym), (0, 160, 0), 1)
    cv2.putText(img, title, (m, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"added latency (ms) per frame; median {med:.1f} ms (green); x: capture time {span:.1f} s",
                (m, m + panel + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    if mem is not None:
        if mem.shape[1] > 2:     # less the per-frame log this plot is drawn from (it grows by design)
            mem = np.stack([mem[:, 0], mem[:, 1] - mem[:, 2]], axis=1)
        lo, hi = mem[:, 1].min() - 20, mem[:, 1].max() + 20
        y0 = m + panel + m
        mem_span = max(float(mem[-1, 0] - mem[0, 0]), 1e-6)
        _draw_series(img, (m, y0, W - m, y0 + panel // 2), mem[:, 0], mem[:, 1], lo, hi, float(mem[0, 0]),
                     mem_span, (0, 0, 200))
        cv2.putText(img, f"resident memory (MB) less the per-frame log: {mem[0, 1]:.0f} at the start, "
                         f"{mem[-1, 1]:.0f} at the end",
                    (m, y0 + panel // 2 + 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    from models.atomic_files import write_image_atomic
    return write_image_atomic(path, img[:, :, ::-1])


def run_one(args: argparse.Namespace, backend: str) -> dict:
    from live.config_files import load_config
    from live.io.sources import is_camera, video_fps, video_frame_count
    from live.pipeline.loop import run as run_loop
    w, _, h = args.size.partition("x")
    if Path(args.source).is_file() and not is_camera(args.source):
        length = video_frame_count(args.source)
        if 0 < length < args.frames:
            print(f"note: {Path(args.source).name} has {length} frames ({length / video_fps(args.source):.1f} s), fewer "
                  f"than the {args.frames} asked: it is played from the start again when it ends")
    cfg = load_config(overrides={
        "generator.path": args.generator or (None if args.avatar else "random"), "generator.arch": args.arch,
        "engine.backend": backend, "engine.precision": args.precision, "engine.device": args.device,
        "engine.threads": args.threads, "run.avatar": args.avatar,
        "run.directions": args.directions, "run.source": args.source, "run.frames": args.frames,
        "run.sinks": ["null"], "run.output_size": [w, h], "run.fast": args.fast, "run.loop": True,
        "run.stats_every_s": 0, "run.adapt": args.adapt, "run.mouth": args.mouth})
    report = run_loop(cfg, record_frames=True)
    rows = [{"stage": ("added latency" if k == "added" else k), **{m: round(v, 2) for m, v in s.items()}}
            for k, s in report.stages.items()]
    title = f"{Path(args.source).name} -> {args.avatar or 'demo ' + args.arch}, {report.fps:.1f} fps"
    plot = plot_latency(report.per_frame, args.plot, title, report.memory)
    record = {"bench": "pipeline", "source": args.source, "avatar": args.avatar, "generator": args.generator,
              "arch": args.arch, "backend": backend, "precision": args.precision, "fast": args.fast, "mouth": args.mouth,
              **report.as_dict(), "dropped_behind": report.dropped_behind, "plot": str(plot), "machine": machine()}
    append_json(args.json, record)
    print_table(f"live loop ({report.engine}): {report.written} frames, {report.fps:.1f} fps, {report.dropped_behind} of "
                f"{report.frames_in} source frames dropped ({report.in_flight_at_stop} more in flight at the stop)", rows,
                [("stage", "stage"), ("median_ms", "median ms"), ("p99_ms", "p99 ms"), ("mean_ms", "mean ms")])
    steps = "; ".join(f"{a['step']} at frame {a['frame']} ({a['stage']} {a['ms']} ms of {a['budget_ms']})"
                      for a in report.adaptations)
    print(f"adaptations: {steps or 'none (tracking and drawing kept within their budgets)'}")
    print(f"plot: {plot}")
    return record


def run(args: argparse.Namespace) -> dict | list[dict]:
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    if len(backends) == 1 and args.repeat == 1:
        return run_one(args, backends[0])
    records = [run_one(args, b) for _ in range(args.repeat) for b in backends]   # alternating: a, b, a, b, ...
    rows = [{"run": i + 1, "engine": r["engine"], "fps": round(r["fps"], 1),
             "added": r["stages"]["added"]["median_ms"], "added_p99": r["stages"]["added"]["p99_ms"],
             "track": r["stages"]["track"]["median_ms"], "render": r["stages"]["render"]["median_ms"],
             "dropped": f"{r['dropped_behind']}/{r['frames_in']}"} for i, r in enumerate(records)]
    print_table("live loop, side by side (alternating runs)", rows, [
        ("run", "run"), ("engine", "engine"), ("fps", "fps"), ("added", "added median ms"),
        ("added_p99", "added p99 ms"), ("track", "track ms"), ("render", "render ms"), ("dropped", "dropped")])
    return records
