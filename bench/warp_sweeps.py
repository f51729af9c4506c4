"""Does the mesh warp draw what it is asked to? Sweeps, tracked afterwards (`python -m bench warp`).

For each portrait: a warp avatar; each sweep asks for a range of one parameter (yaw +-20, pitch
+-15, roll +-20 degrees; jaw and each blink from the avatar's own value up to the 95th percentile
of real footage), renders it, tracks the output and regresses the tracked change on the requested
one: slope (1 = drawn exactly), Pearson, and for pose sweeps the cross-talk, the largest mean
|change| of another pose angle as a fraction of the mean |requested| one. Gaze sweeps ask the renderer
for an iris offset (eye widths) and track it back the same way; the mouth check opens the jaw to the
footage's 95th percentile and measures the inside: brightness spread (0 for a flat fill) and the share
of teeth-bright pixels. The calm check drives each portrait with vox_driving, lp_d0 and lp_d10 through the relative
mode (resting pose from its first second) and, where the driver's lips are closed (inner-lip gap under
0.03 mouth widths, on the tracked mesh) and the head still (within 5 degrees of rest), measures how far
the avatar's mouth opens beyond its rest (tracked on the render) past the driver's gap: up to 0.05 is a
mouth left closed. The edge check turns the head (yaw +-20, pitch +-15) and measures the gradient
energy in a band around the face's outline against the still frame's (1 = as clean as the photo); the doubling
check turns it the same way and measures how much of the photo's face is drawn a second time outside the face
(a turned photo's far cheek carried by the background beside the face that turns it into view).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.records import append_json, default_json, machine
from live.cli.table import print_table
from live.warp.pixels import LUMA
from models.face.landmarks import PARAM_NAMES, inner_lip_gap

PORTRAITS = ("portrait_vermeer.jpg", "portrait_mona_lisa.jpg", "portrait_bouguereau.jpg", "portrait_einstein.jpg")
CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")
POSE_SWEEPS = {"yaw": 20.0, "pitch": 15.0, "roll": 20.0}
EXPRESSION_SWEEPS = ("jaw", "blink_left", "blink_right")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--media", default="../shared/media",
                   help="folder with the portraits and the talking-head clips (default: %(default)s)")
    p.add_argument("--portraits", nargs="+", default=list(PORTRAITS),
                   help="portrait files in --media to make avatars of (default: the four)")
    p.add_argument("--steps", type=int, default=9, help="values per sweep (default: %(default)s); the whole bench "
                   "takes several minutes per portrait on 2 CPU cores")
    p.add_argument("--json", default=default_json(), help="results are appended to this file (default: %(default)s)")


def footage_p95(media: Path, every: int = 4) -> dict[str, float]:
    """95th percentile of jaw and blinks over the test clips (what real faces reach)."""
    from live.config import LiveConfig
    from live.io.sources import iter_video_rgb
    from live.tracking.estimator import make_estimator
    values = []
    for clip in CLIPS:
        est = make_estimator(LiveConfig().tracking)
        values += [est(f, k, t).params for k, t, f in iter_video_rgb(media / clip) if k % every == 0]
        est.close()
    v = np.array(values)
    v = v[np.isfinite(v).all(1)]
    return {n: float(np.percentile(v[:, PARAM_NAMES.index(n)], 95)) for n in EXPRESSION_SWEEPS}


def sweep_requests(p_s: np.ndarray, p95: dict, steps: int) -> dict[str, np.ndarray]:
    out = {n: np.linspace(-a, a, steps) for n, a in POSE_SWEEPS.items()}
    for n in EXPRESSION_SWEEPS:
        top = max(p95[n] - p_s[PARAM_NAMES.index(n)], 0.5)        # at least half a standard deviation
        out[n] = np.linspace(0, top, steps)
    return out


def sweep(renderer, tracker, name: str, values: np.ndarray) -> dict:
    """Requested raw changes of `name` -> tracked changes (from the unmoved render)."""
    k = PARAM_NAMES.index(name)
    frames = []
    for v in np.concatenate([[0.0], values]):
        delta = np.zeros(len(PARAM_NAMES))
        delta[k] = v
        frames.append(renderer(delta * renderer.space.to_norm))
    params, _ = tracker(np.stack(frames))
    base, got = params[0], params[1:]
    ok = np.isfinite(got).all(1) & np.isfinite(base).all()
    req, change = values[ok], (got[ok] - base)
    achieved = change[:, k]
    slope = float((req * achieved).sum() / (req**2).sum())
    pearson = float(np.corrcoef(req, achieved)[0, 1]) if ok.sum() > 2 else float("nan")
    row = {"param": name, "tracked": f"{int(ok.sum())}/{len(values)}", "slope": round(slope, 3),
           "pearson": round(pearson, 3)}
    if name in POSE_SWEEPS:
        others = [j for j in range(3) if j != k]
        row["cross_talk"] = round(float(np.abs(change[:, others]).mean(0).max() / np.abs(req).mean()), 3)
    return row


GAZE_SWEEPS = {"gaze_across": (0, 0.15), "gaze_down": (1, 0.08)}     # eye widths either way


def gaze_sweep(renderer, tracker, name: str, steps: int) -> dict:
    """Requested gaze offsets -> the gaze tracked on the render (models/face/gaze.py), from the unmoved one; and the
    same read from the image alone (bench/iris_locator.py: the avatar's gaze table is the tracker's own reading, so
    this is the check that does not agree with it by construction). Across, also how far this avatar's eyes can be
    seen to look (its gaze table's ends, live/warp/gaze_response.py: a request beyond is drawn at the eye's corner)
    and the slope of requests spread over 90 % of that reach: the glance drawn as asked where the eye can show it."""
    axis, extent = GAZE_SWEEPS[name]
    values = np.linspace(-extent, extent, steps)
    row = {"param": name, **_gaze_fit(renderer, tracker, axis, values)}
    table = getattr(getattr(renderer, "gaze_response", None), "seen_across", None)
    if axis == 0 and table is not None:
        row["reach"] = f"{table[0]:+.3f} / {table[-1]:+.3f}"
        within = _gaze_fit(renderer, tracker, axis, 0.9 * np.linspace(table[0], table[-1], steps))
        row["reach_slope"], row["reach_pearson"] = within["slope"], within["pearson"]
        row["reach_image_slope"] = within["image_slope"]
    return row


def _gaze_fit(renderer, tracker, axis: int, values: np.ndarray) -> dict:
    from bench.iris_locator import locate_gaze
    from models.face.gaze import measure_gaze
    got, seen = [], []
    for v in np.concatenate([[0.0], values]):
        gaze = np.zeros(2)
        gaze[axis] = v
        frame = renderer(np.zeros(len(PARAM_NAMES)), gaze)
        obs = tracker.track(frame)
        got.append(measure_gaze(obs.landmarks)[axis] if obs.found else np.nan)
        seen.append(locate_gaze(frame, obs.landmarks)[axis] if obs.found else np.nan)
    row = {}
    for key, reading in (("", np.array(got)), ("image_", np.array(seen))):
        ok = np.isfinite(reading[1:]) & np.isfinite(reading[0])
        req, achieved = values[ok], reading[1:][ok] - reading[0]
        if not key:
            row["tracked"] = f"{int(ok.sum())}/{len(values)}"
        row[key + "slope"] = round(float((req * achieved).sum() / (req**2).sum()), 3) if ok.any() else float("nan")
        row[key + "pearson"] = round(float(np.corrcoef(req, achieved)[0, 1]), 3) if ok.sum() > 2 else float("nan")
    return row


def mouth_check(renderer, jaw: float) -> dict:
    """The mouth's inside with the jaw open: its brightness spread (a flat fill has none) and the share of
    teeth-bright pixels (brighter than 0.7 of the photo's eye whites: teeth under the same light)."""
    import cv2

    from models.face.mesh_topology import boundary_loops
    delta = np.zeros(len(PARAM_NAMES))
    delta[PARAM_NAMES.index("jaw")] = jaw
    frame = renderer(delta * renderer.space.to_norm)
    lips = renderer.mesh(delta)[boundary_loops()["mouth"], :2]
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(lips).astype(np.int32)], 255)
    inside = frame[cv2.erode(mask, np.ones((3, 3), np.uint8)) > 0].astype(np.float64)
    luma = inside @ LUMA
    from live.warp.mouth_interior import eye_white_colour
    landmarks = np.c_[renderer.src2d, np.zeros(len(renderer.src2d))]
    white = eye_white_colour(renderer.photo, landmarks)
    if white is None:   # eyes too small to sample: the brightest tenth of the face's own pixels instead
        white = np.percentile(renderer.photo.reshape(-1, 3), 90, axis=0)
    bright = 0.7 * float(white @ LUMA)
    return {"param": "mouth inside", "tracked": f"{len(inside)} px",
            "luma_std": round(float(luma.std()), 1) if len(luma) else 0.0,
            "teeth_share": round(float((luma > bright).mean()), 3) if len(luma) else 0.0,
            "drawn": "drawn" if renderer.mouth_interior is not None else "photo's own"}


EDGE_TURNS = {"yaw": 20.0, "pitch": 15.0}


def contour_band_energy(frame: np.ndarray, outline: np.ndarray, width: float) -> float:
    """Mean gradient magnitude (Sobel, grey levels per pixel) in a band `width` px either side of the face's
    outline polygon: tears, cracks and streaks at the contour raise it."""
    import cv2
    fill = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(fill, [np.round(outline).astype(np.int32)], 255)
    k = np.ones((2 * int(width) + 1, 2 * int(width) + 1), np.uint8)
    band = (cv2.dilate(fill, k) > 0) & ~(cv2.erode(fill, k) > 0)
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
    magnitude = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    return float(magnitude[band].mean())


def edge_check(renderer, steps: int) -> dict:
    """The contour's gradient energy while the head turns (yaw +-20, pitch +-15 degrees), as a ratio to the
    still frame's: 1 is as clean as the photo; tearing and streaks push it up."""
    outline_of = lambda delta_raw: renderer.mesh(delta_raw)[renderer.oval, :2]     # noqa: E731
    size = float(np.ptp(renderer.src2d[renderer.oval], axis=0).max())
    width = max(0.06 * size, 2.0)
    zero = np.zeros(len(PARAM_NAMES))
    still = contour_band_energy(renderer(zero), outline_of(zero), width)
    ratios = []
    for name, extent in EDGE_TURNS.items():
        for v in np.linspace(-extent, extent, steps):
            delta = np.zeros(len(PARAM_NAMES))
            delta[PARAM_NAMES.index(name)] = v
            ratios.append(contour_band_energy(renderer(delta * renderer.space.to_norm), outline_of(delta), width)
                          / max(still, 1e-6))
    return {"param": "contour edges", "tracked": f"{len(ratios)} turns", "edge_median": round(float(np.median(ratios)), 3),
            "edge_max": round(float(np.max(ratios)), 3)}


CALM_CLIPS = ("vox_driving.mp4", "lp_d0.mp4", "lp_d10.mp4")      # talking and smiling, with calm moments
STILL_DEG = 5.0          # ... and its head within this many degrees of its resting pose (a still face)
CALM_GAP = 0.03          # the driver's inner-lip gap (mouth widths) below which the lips are closed


def track_driver(clip: Path) -> dict:
    """The clip as the live loop sees it: tracked, smoothed, the relative mode's resting pose from its first
    second; with each frame's inner-lip gap measured on the tracked mesh."""
    from live.config import LiveConfig
    from live.io.sources import iter_video_rgb
    from live.pipeline.motion import AUTO_NEUTRAL_S, resting_pose
    from live.tracking.estimator import make_estimator, make_smoother
    cfg = LiveConfig()
    estimator, smoother = make_estimator(cfg.tracking), make_smoother(cfg.smoothing)
    params, gaps, times = [], [], []
    try:
        for k, t, frame in iter_video_rgb(clip):
            raw = estimator(frame, k, t)
            smoothed = smoother(raw)
            if raw.found:
                params.append(smoothed.params)
                gaps.append(inner_lip_gap(raw.landmarks))
                times.append(t)
    finally:
        estimator.close()
    params, gaps, times = np.array(params), np.array(gaps), np.array(times)
    first = times - times[0] < AUTO_NEUTRAL_S
    return {"params": params, "gaps": gaps, "neutral": resting_pose(params[first], list(PARAM_NAMES)),
            "rest_gap": float(np.percentile(gaps[first], 10))}


def calm_check(renderer, tracker, drivers: list[dict], every: int = 2) -> dict:
    """Where the driver's lips are closed and the head still, how far the avatar's mouth (tracked on the
    render) opens beyond its own rest, less the driver's gap: up to 0.05 mouth widths is a mouth left closed
    (a closed-mouthed photo cannot close further, a photo's parted lips are its rest). The change is the live
    loop's: relative to the resting pose, the jaw gated by the driver's visible lip gap."""
    from live.pipeline.motion import lips_gate
    rest = tracker.track(renderer(np.zeros(len(PARAM_NAMES))))
    if not rest.found:
        return {"param": "calm mouth", "tracked": "no face at rest"}
    rest_gap, diffs, asked, jaw = inner_lip_gap(rest.landmarks), [], 0, PARAM_NAMES.index("jaw")
    for driver in drivers:
        turn = np.abs(driver["params"][:, :3] - driver["neutral"][:3]).max(1)
        for i in np.nonzero((driver["gaps"] < CALM_GAP) & (turn < STILL_DEG))[0][::every]:
            delta = lips_gate((driver["params"][i] - driver["neutral"]) * renderer.space.to_norm,
                              driver["gaps"][i], jaw, driver["rest_gap"])
            obs = tracker.track(renderer(delta))
            asked += 1
            if obs.found:      # opened beyond its rest by more than the driver's lips are apart
                diffs.append(max((inner_lip_gap(obs.landmarks) - rest_gap) - driver["gaps"][i], 0.0))
    if not diffs:
        return {"param": "calm mouth", "tracked": f"0/{asked}"}
    diffs = np.array(diffs)
    return {"param": "calm mouth", "tracked": f"{len(diffs)}/{asked}",
            "calm_median": round(float(np.median(diffs)), 3), "calm_max": round(float(diffs.max()), 3)}


def doubling_check(avatar, space, model, steps: int) -> dict:
    """How much of the photo's face the background layer draws a second time, outside the face, while the head
    turns (yaw +-20, pitch +-15 degrees): a turned photo's far cheek, outside its outline, drawn beside the face
    that turns it into view (a doubled eye corner, a seam). The avatar is drawn once more from a mask of its photo
    (face white, the rest black); white outside where the face's triangles now lie, as a share of the face's
    area, is the doubling. 0 is none."""
    from dataclasses import replace

    import cv2

    from kernels.triangle_map import triangle_map
    from live.warp.plate import covered_with_holes_filled
    from live.warp.renderer import WarpRenderer
    from models.face.mesh_topology import face_triangles

    h, w = avatar.photo.shape[:2]
    src2d = np.asarray(avatar.landmarks, np.float64)[:, :2]
    triangles = face_triangles()
    face = covered_with_holes_filled(triangle_map(src2d, src2d, triangles, h, w)[0])
    marked = WarpRenderer(replace(avatar, photo=np.repeat(face[:, :, None] * 255, 3, 2)), space, model)
    shares = []
    for name, extent in EDGE_TURNS.items():
        for v in np.linspace(-extent, extent, steps):
            delta = np.zeros(len(PARAM_NAMES))
            delta[PARAM_NAMES.index(name)] = v
            white = marked(delta * space.to_norm)[:, :, 0] > 127
            inside = covered_with_holes_filled(triangle_map(marked.mesh(delta)[:, :2], src2d, triangles, h, w)[0])
            inside = cv2.dilate(inside, np.ones((5, 5), np.uint8)) > 0
            shares.append(float((white & ~inside).sum()) / float((face > 0).sum()))
    return {"param": "face drawn twice", "tracked": f"{len(shares)} turns", "doubled_max": round(max(shares), 4)}


def run(args: argparse.Namespace) -> dict:
    from live.warp.renderer import WarpRenderer
    from live.warp.create_avatar import create_warp_avatar
    from models.face.params import ImageParams, ParameterSpace
    from models.face.shape_model import FaceModel
    from models.face.tracker import MediaPipeTracker
    media = Path(args.media)
    model = FaceModel.load()
    space = ParameterSpace(PARAM_NAMES, model.param_range)
    p95 = footage_p95(media)
    drivers = [track_driver(media / clip) for clip in CALM_CLIPS]
    tracker = ImageParams(model)
    landmarks = MediaPipeTracker(max_faces=1, video=False, mirror_index=model.mirror)
    rows = []
    try:
        for portrait in args.portraits:
            avatar = create_warp_avatar(media / portrait)
            renderer = WarpRenderer(avatar, space, model)
            for name, values in sweep_requests(avatar.p_s, p95, args.steps).items():
                rows.append({"portrait": portrait, **sweep(renderer, tracker, name, values)})
            for name in GAZE_SWEEPS:
                rows.append({"portrait": portrait, **gaze_sweep(renderer, landmarks, name, args.steps)})
            top = max(p95["jaw"] - avatar.p_s[PARAM_NAMES.index("jaw")], 0.5)
            rows.append({"portrait": portrait, **mouth_check(renderer, top)})
            rows.append({"portrait": portrait, **calm_check(renderer, landmarks, drivers)})
            rows.append({"portrait": portrait, **edge_check(renderer, args.steps)})
            rows.append({"portrait": portrait, **doubling_check(avatar, space, model, args.steps)})
    finally:
        tracker.close()
        landmarks.close()
    record = {"bench": "warp_sweeps", "p95_of_footage": {k: round(v, 3) for k, v in p95.items()}, "rows": rows,
              "machine": machine()}
    append_json(args.json, record)
    print_table("mesh warp: tracked change vs requested (slope 1, Pearson 1 = drawn exactly)", rows,
                [("portrait", "portrait"), ("param", "param"), ("tracked", "tracked"), ("slope", "slope"),
                 ("pearson", "Pearson"), ("image_slope", "image-only slope"),
                 ("image_pearson", "Pearson"), ("reach", "gaze reach (eye widths)"), ("reach_slope", "slope within"),
                 ("reach_pearson", "Pearson"), ("reach_image_slope", "image-only"),
                 ("cross_talk", "other pose / requested"), ("luma_std", "mouth luma std"),
                 ("teeth_share", "teeth-bright share"), ("drawn", "inside"), ("calm_median", "calm: opened past the "
                 "driver, median"), ("calm_max", "max"), ("edge_median", "contour energy / still, median"),
                 ("edge_max", "max"), ("doubled_max", "face drawn twice / face area, max")])
    return record
