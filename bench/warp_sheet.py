"""A contact sheet of warp avatars driven by real clips (`python -m bench warp-sheet`).

For each driving clip, the moments a viewer notices: its widest mouth, broadest smile, deepest blink,
furthest glance aside and largest head turn, found on the tracked clip. Each portrait is driven to those
moments the way the live loop drives it (relative to the clip's resting pose, the jaw gated by the visible
lips, the gaze relative to the first second's, the mouth's inside the driver's own or drawn as `--mouth` says,
default driver as in `live run`). The sheet has a row of driver frames, then one row per
portrait, or two with `--before`: cells saved by an earlier run (`--save-cells`), so a change to the renderer
can be shown against the code before it: run this file with the older tree first on PYTHONPATH
(`PYTHONPATH=OLD_TREE python bench/warp_sheet.py --save-cells before.npz`). The older tree must have the gaze
follower and the atomic files (commit c3ef1e4 on).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

MOMENTS = ("widest mouth", "smile", "blink", "gaze aside", "largest turn")
SHEET_CLIPS = ("lp_d3.mp4", "vox_driving.mp4")
CELL = 160


def add_arguments(p: argparse.ArgumentParser) -> None:
    from bench.warp_sweeps import PORTRAITS
    p.add_argument("--media", default="../shared/media")
    p.add_argument("--portraits", nargs="+", default=list(PORTRAITS))
    p.add_argument("--clips", nargs="+", default=list(SHEET_CLIPS))
    p.add_argument("-o", "--output", default="bench/warp_contact_sheet_clips_cpu.jpg")
    p.add_argument("--before", help="cells saved by an earlier run (--save-cells), shown above each portrait's row")
    p.add_argument("--save-cells", help="also save this run's cells here (npz), for a later --before")
    p.add_argument("--mouth", default="driver", choices=["driver", "drawn"],
                   help="a closed photo mouth's inside: the driver's own or drawn (live run --mouth)")


def driver_moments(clip: Path) -> list[dict]:
    """The clip's moments (MOMENTS order): its frame, and the change and gaze the live loop would draw. (Tracked
    here, not through bench.warp_sweeps.track_driver, which keeps neither gaze nor frame index: this file also runs
    with an older tree's packages, module docstring.)"""
    from live.config import LiveConfig
    from live.io.sources import iter_video_rgb
    from live.pipeline.gaze_follow import GazeFollower
    from live.pipeline.motion import AUTO_NEUTRAL_S, resting_pose
    from live.tracking.estimator import make_estimator, make_smoother
    from models.face.landmarks import PARAM_NAMES, inner_lip_gap
    cfg = LiveConfig()
    estimator, smoother, gaze_follower = make_estimator(cfg.tracking), make_smoother(cfg.smoothing), GazeFollower()
    index, params, gaps, times, gazes, landmarks = [], [], [], [], [], []
    try:
        for k, t, frame in iter_video_rgb(clip):
            raw = estimator(frame, k, t)
            smoothed = smoother(raw)
            if raw.found:
                gaze = gaze_follower(raw.landmarks, t)
                index.append(k)
                params.append(smoothed.params)
                gaps.append(inner_lip_gap(raw.landmarks))
                times.append(t)
                gazes.append(np.zeros(2) if gaze is None else gaze)
                landmarks.append(raw.landmarks)
    finally:
        estimator.close()
    params, gaps, times, gazes = np.array(params), np.array(gaps), np.array(times), np.array(gazes)
    first = times - times[0] < AUTO_NEUTRAL_S
    neutral, rest_gap = resting_pose(params[first], list(PARAM_NAMES)), float(np.percentile(gaps[first], 10))
    change = params - neutral
    col = {n: PARAM_NAMES.index(n) for n in ("yaw", "pitch", "jaw", "smile_left", "smile_right", "blink_left",
                                              "blink_right")}
    scores = (change[:, col["jaw"]], change[:, col["smile_left"]] + change[:, col["smile_right"]],
              change[:, col["blink_left"]] + change[:, col["blink_right"]], np.abs(gazes[:, 0]),
              np.abs(change[:, col["yaw"]]) + np.abs(change[:, col["pitch"]]))
    picks = [int(np.argmax(s)) for s in scores]
    wanted = {index[i]: i for i in picks}
    frames = {k: f for k, _, f in iter_video_rgb(clip) if k in wanted}
    return [{"frame": frames[index[i]], "change": change[i], "neutral": neutral, "gap": gaps[i], "rest_gap": rest_gap,
             "gaze": gazes[i], "landmarks": landmarks[i]} for i in picks]


def _cell(image: np.ndarray, centre: np.ndarray, size: float, label: str) -> np.ndarray:
    """A square crop `size` px wide around `centre`, resized to CELL, labelled."""
    import cv2
    h, w = image.shape[:2]
    half = int(size / 2)
    x, y = np.round(centre).astype(int)
    padded = cv2.copyMakeBorder(image, half, half, half, half, cv2.BORDER_REPLICATE)
    crop = padded[y:y + 2 * half, x:x + 2 * half]
    return _label(cv2.resize(crop, (CELL, CELL), interpolation=cv2.INTER_AREA), label)


def portrait_cells(portrait: Path, moments: list[dict], mouth: str = "driver") -> np.ndarray:
    """[len(moments), CELL, CELL, 3]: the portrait driven to each moment, cropped around its face."""
    from live.pipeline import motion
    from live.warp.renderer import WarpRenderer
    import importlib
    try:
        create_warp_avatar = importlib.import_module("live.warp.create_avatar").create_warp_avatar
    except ImportError:                 # an older tree (module docstring), where the file's module made avatars
        create_warp_avatar = importlib.import_module("live.warp.warp_avatar").create_warp_avatar
    from models.face.landmarks import PARAM_NAMES
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    space = ParameterSpace(PARAM_NAMES, model.param_range)
    avatar = create_warp_avatar(portrait)
    renderer = WarpRenderer(avatar, space, model)
    oval = renderer.src2d[renderer.oval]
    centre, size = oval.mean(0), 1.5 * float(np.ptp(oval, axis=0).max())
    retarget_blinks = getattr(motion, "retarget_blinks", None)     # (an older tree has none: the change as it was)
    try:                                                            # (nor the driver's mouth: drawn)
        from live.warp.driver_mouth import cut_mouth
    except ImportError:
        cut_mouth = None
    cells = []
    for m in moments:
        change = m["change"]
        if retarget_blinks is not None:
            change = retarget_blinks(change, list(PARAM_NAMES), m["neutral"], avatar.p_s, model.param_range[:, 1])
        delta = motion.lips_gate(change * space.to_norm, m["gap"], PARAM_NAMES.index("jaw"), m["rest_gap"])
        if mouth == "driver" and cut_mouth is not None:
            frame = renderer(delta, m["gaze"], cut_mouth(m["frame"], m["landmarks"]))
        else:
            frame = renderer(delta, m["gaze"])
        cells.append(_cell(frame, centre, size, ""))
    return np.stack(cells)


def run(args: argparse.Namespace) -> dict:
    import cv2

    from models.atomic_files import atomic_path
    media = Path(args.media)
    before = load_cells(args.before, args.portraits, len(MOMENTS) * len(args.clips)) if args.before else {}
    moments, driver_row = [], []
    for clip in args.clips:
        found = driver_moments(media / clip)
        moments += found
        for name, m in zip(MOMENTS, found):
            h, w = m["frame"].shape[:2]
            driver_row.append(_cell(m["frame"], np.array([w / 2, h / 2]), min(h, w), f"{Path(clip).stem} {name}"))
    rows, saved = [np.concatenate(driver_row, 1)], {}
    for portrait in args.portraits:
        cells = portrait_cells(media / portrait, moments, getattr(args, "mouth", "driver"))
        saved[portrait] = cells
        if portrait in before:
            rows.append(np.concatenate([_label(c, "before") for c in before[portrait]], 1))
            cells = np.stack([_label(c, "now") for c in cells])
        rows.append(np.concatenate(list(cells), 1))
    sheet = cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR)
    _, jpeg = cv2.imencode(".jpg", sheet, [cv2.IMWRITE_JPEG_QUALITY, 85])
    with atomic_path(args.output) as tmp:
        Path(tmp).write_bytes(jpeg.tobytes())
    if args.save_cells:
        with atomic_path(args.save_cells) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, **saved)
    print(f"{args.output}: {len(args.portraits)} portraits x {len(moments)} moments"
          + (f", before from {args.before}" if args.before else ""))
    return {"bench": "warp_sheet", "output": args.output}


def load_cells(path: str, portraits: list[str], moments: int) -> dict[str, np.ndarray]:
    """Cells saved by `--save-cells` for these portraits: uint8 [moments, CELL, CELL, 3] each. Anything else is
    refused with what to do, before minutes of driving."""
    hint = "save them with --save-cells (from an older tree: this file's docstring says how)"
    if not Path(path).is_file():
        raise SystemExit(f"--before {path}: {'not a file' if Path(path).exists() else 'no such file'}; {hint}")
    try:
        with np.load(path, allow_pickle=False) as saved:      # an .npy is a bare array: no .files
            cells = {name: saved[name] for name in saved.files}
    except Exception as e:          # damaged zip, header or stream, pickled objects, a bare .npy, unreadable
        raise SystemExit(f"--before {path}: not cells saved by warp-sheet ({type(e).__name__}: {e}); {hint}") from None
    shape = (moments, CELL, CELL, 3)
    for name, c in cells.items():
        if c.dtype != np.uint8 or c.shape != shape:
            raise SystemExit(f"--before {path}: its {name} cells are {c.dtype} {c.shape}, this run's uint8 {shape}; "
                             f"make both with the same --clips, {hint}")
    if not set(cells) & set(portraits):
        raise SystemExit(f"--before {path}: holds cells of {', '.join(sorted(cells)) or 'no portrait'}, none of "
                         f"--portraits ({', '.join(portraits)}); {hint}")
    return cells


def _label(cell: np.ndarray, text: str) -> np.ndarray:
    """A copy of the cell with `text` in its top left corner."""
    import cv2
    out = cell.copy()
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    return out


if __name__ == "__main__":         # run as a file, so an older tree on PYTHONPATH supplies the renderer
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args())
