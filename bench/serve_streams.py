"""`live serve` with 1, 2, 4 browser connections at once (`python -m bench serve`).

One headless Chromium (its fake camera plays lp_d3) opens the page in N windows against one server on this
machine; once every window streams, each records its camera and the avatar it is shown side by side. Per
stream: the fps the page presents, the server's loop fps and added latency (browser frame in -> avatar
frame handed to the encoder), tracking and render times, the adaptations the loop chose, and glass to glass:
the lag that best aligns the driver's and the avatar's jaw and yaw as the page shows them (sampled every
66 ms, so in steps of 66 ms), with the Pearson at that lag. Browser, server and all streams share the
machine's cores, as they do for a user running everything on one laptop.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.browser_session import (
    CHROMIUM_INSTALL,
    chromium,
    chromium_paths,
    clip_to_y4m,
    collect_recording,
    follow_check,
    live_server,
    server_connections,
    server_output,
    start_recording,
    wait_for,
    wait_until_idle,
)
from bench.records import append_json, default_json, machine
from live.cli.table import print_table

EVERY_MS = 66
MAX_LAG_MS = 3000      # an overloaded machine buffers a second and more (4 streams on 2 cores)
IDS = ("camera", "avatar-video")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--media", default="../shared/media")
    p.add_argument("--clip", default="lp_d3.mp4")
    p.add_argument("--connections", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--shots", type=int, default=180, help="frame pairs recorded per window (every 66 ms)")
    p.add_argument("--json", default=default_json())


def measure(url: str, camera: Path, n: int, shots: int) -> list[dict]:
    """N browsers streaming at once (one Chromium each: a window that is not in front stops presenting
    frames), each window's figures."""
    browsers = []
    try:
        for _ in range(n):
            browsers.append(chromium(camera))
            browsers[-1].get(url + "?autostart=1")
        for b in browsers:
            wait_for(b, "return window.liveState.phase === 'streaming' && window.liveState.received > 30", 90,
                     "every window streaming")
        time.sleep(3.0)                   # past the first second's calibration and the loops' adaptations
        start = []
        for b in browsers:                # every page records at once (the recorder runs in the page)
            start.append((time.perf_counter(), b.execute_script("return window.liveState.received")))
            start_recording(b, IDS, EVERY_MS, shots)
        rows = []
        for b, (t0, r0) in zip(browsers, start):
            recording = collect_recording(b, IDS, shots)
            received = b.execute_script("return window.liveState.received")
            rows.append({"id": b.execute_script("return window.liveState.id"),
                         "page_says": b.execute_script("return document.getElementById('notice').textContent"),
                         "page_fps": round((received - r0) / (time.perf_counter() - t0), 1),
                         **follow_check(recording, "camera", "avatar-video", max_lag_ms=MAX_LAG_MS)})
        server = {c["id"]: c for c in server_connections(url)}
        missing = [row["id"] for row in rows if row["id"] not in server]
        if missing:
            print(f"  the server no longer lists {missing} (it lists {sorted(server)})")
        for row in rows:
            s = server.get(row["id"], {})
            row.update({k: s.get(k) for k in ("loop_fps", "added_ms", "track_ms", "render_ms", "adaptations",
                                               "dropped_in_feed")})
        return rows
    finally:
        for b in browsers:
            b.quit()


def run(args: argparse.Namespace) -> dict:
    if chromium_paths() is None:
        raise SystemExit(f"needs Chromium and its driver: {CHROMIUM_INSTALL}")
    media = Path(args.media)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        camera = Path(tmp) / "camera.y4m"
        clip_to_y4m(media / args.clip, camera)
        with live_server("--max-connections", str(max(args.connections)), home=Path(tmp) / "home") as (url, proc):
            for n in args.connections:
                for k, row in enumerate(measure(url, camera, n, args.shots)):
                    results.append({"connections": n, "stream": k + 1, **row})
                # the last browsers' connections let go before the next count
                if not wait_until_idle(url, 30.0):
                    raise AssertionError("the server still holds connections 30 s after their browsers quit")
        ended = [line.split("INFO", 1)[-1].strip() for line in server_output(proc).splitlines()
                 if " ended: " in line]
    summary = []
    for n in args.connections:
        rows = [r for r in results if r["connections"] == n]
        summary.append({"connections": n, "page_fps": round(float(np.median([r["page_fps"] for r in rows])), 1),
                        "added_ms": round(float(np.median([r["added_ms"] or np.nan for r in rows])), 1),
                        "lag_ms": round(float(np.median([r["lag_ms"] for r in rows]))),
                        "jaw_r": round(float(np.min([r["jaw_r"] for r in rows])), 3),
                        "yaw_r": round(float(np.min([r["yaw_r"] for r in rows])), 3)})
    record_ = {"bench": "serve_streams", "clip": args.clip, "streams": results, "summary": summary, "ended": ended,
               "machine": machine()}
    append_json(args.json, record_)
    print_table("live serve: streams at once (per stream)", results,
                [("connections", "connections"), ("stream", "stream"), ("page_fps", "page fps"),
                 ("loop_fps", "loop fps"), ("added_ms", "server added ms"), ("track_ms", "track ms"),
                 ("render_ms", "render ms"), ("lag_ms", "glass to glass ms"), ("jaw_r", "jaw r"),
                 ("yaw_r", "yaw r"), ("adaptations", "adaptations")])
    for line in ended:
        print(" ", line[:160])
    return record_
