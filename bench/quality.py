"""Reenactment quality measured as the paper does (`python -m bench quality`).

Self-reenactment: an avatar is made from a clip's first frame with a face, the clip drives it
(relative: each frame's parameter change from that first frame), and each sampled output frame is
compared with the real frame, both cropped as the avatar was and brought to 256 px: CSIM, PSNR,
SSIM, NME, pose and expression error (bench/reenactment_metrics.py says how each is defined).
Cross-reenactment: an avatar from a portrait, driven by a clip; CSIM against the portrait's crop,
pose and expression error against the avatar's own parameters plus the driver's change (as the loop asks
for it: for a warp avatar the eyes together, a blink as a share of the way to shut, live/pipeline/motion.py).
Baselines on the same frames: "still" (the avatar's unmoved frame, repeated: any method must beat
it on pose, expression and NME) and, for self-reenactment, "real" (the real frame at the
generator's resolution: what a perfect renderer of that size would score).
Sampling: the driver is tracked on every frame (smoothing needs them), outputs are rendered and
measured on `--frames` evenly spaced frames per clip. Frames where a face is missing are counted
and reported, and left out of that metric's mean. Writes per-frame CSV, summary JSON and markdown,
and a strip of driver | output frames per pair.
Both protocols also compare the teeth the avatar shows with the driver's (or the real frame's; bench/
reenactment_metrics.py teeth_share, each against its own eye whites and cheeks): their Pearson per pair, and the
share of frames where both show teeth or both do not; self-reenactment also gives the mouth region's PSNR.
`--mouth driver|drawn` picks the warp's mouth inside, as `live run --mouth` does. In self-reenactment the
driver's mouth is cut from the very frame it is compared with: lean on the cross figures to choose.
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.records import append_json, default_json, machine, results_dir
from bench.reenactment_metrics import FaceMeasure, Measurer, compare
from bench.reenactors import make_reenactor
from live.cli.table import print_table
from models.atomic_files import atomic_path, write_text_atomic

SELF_CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")
PORTRAITS = ("portrait_vermeer.jpg", "portrait_mona_lisa.jpg", "portrait_bouguereau.jpg", "portrait_einstein.jpg")
DRIVERS = ("lp_d3.mp4", "vox_driving.mp4")
PEARSON = ("yaw", "pitch", "jaw", "teeth")
SHOWS_TEETH = 0.05      # teeth share above which a mouth counts as showing teeth
METRICS = ("csim", "psnr", "mouth_psnr", "ssim", "nme", "pose_err", "yaw_err", "pitch_err", "roll_err", "exp_err", "gaze_err")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", help="generator (stylegan2 renderer)")
    p.add_argument("--directions", "-d", help="direction matrix (stylegan2 renderer)")
    p.add_argument("--renderer", default="stylegan2", choices=["stylegan2", "warp"], help="what draws the avatar")
    p.add_argument("--framing", default="fixture", choices=["fixture", "voxceleb", "ffhq"])
    p.add_argument("--mouth", default="driver", choices=["driver", "drawn"],
                   help="warp: a closed photo mouth's inside, the driver's own or drawn (live run --mouth)")
    p.add_argument("--media", default="../shared/media")
    p.add_argument("--clips", nargs="*", default=list(SELF_CLIPS), help="self-reenactment clips (none: skip)")
    p.add_argument("--portraits", nargs="*", default=list(PORTRAITS), help="cross-reenactment avatars (none: skip)")
    p.add_argument("--drivers", nargs="*", default=list(DRIVERS), help="cross-reenactment drivers")
    p.add_argument("--frames", type=int, default=24, help="frames sampled per clip (evenly spaced)")
    p.add_argument("--steps", type=int, default=100, help="avatar inversion steps (the bench's quick avatars)")
    p.add_argument("--tune-steps", type=int, default=0, help="pivotal tuning steps (0: none)")
    p.add_argument("--identity-guard", action=argparse.BooleanOptionalAction, default=True,
                   help="ease changes into each avatar's identity limits, as live run does (default on)")
    p.add_argument("--out", default=str(results_dir() / "quality"), help="folder for the CSV, the summary and the strips")
    p.add_argument("--json", default=default_json())


def _media(args, name: str) -> Path:
    path = Path(args.media) / name
    if not path.is_file():
        raise SystemExit(f"{path}: no such file; give --media the folder of the clips and portraits")
    return path


def tracked_driver(clip: Path, until: int):
    """(frames [list of RGB], params [T, 15] smoothed, lip gaps [T], gazes [T, 2]; NaN where no face, landmarks
    [list of [478, 3] or None]) for
    frames 0..until. The lip gap (mouth widths) gates the jaw as `live run` does; the gaze (eye widths) is
    smoothed as `live run` smooths it (live/pipeline/gaze_follow.py). Its neutral is the first face's gaze,
    not live run's median over the first second, because the protocol takes the pose from the first frame."""
    from live.config import LiveConfig
    from live.io.sources import iter_video_rgb
    from live.pipeline.gaze_follow import GazeFollower
    from live.tracking.estimator import make_estimator, make_smoother
    from models.face.landmarks import inner_lip_gap
    cfg = LiveConfig()
    gaze = GazeFollower("follow", neutral_s=0.0)
    estimator, smoother = make_estimator(cfg.tracking), make_smoother(cfg.smoothing)
    frames, params, gaps, gazes, landmarks = [], [], [], [], []
    try:
        for k, t, frame in iter_video_rgb(clip, max_frames=until + 1):
            frames.append(frame)
            raw = estimator(frame, k, t)
            params.append(smoother(raw).params)
            landmarks.append(raw.landmarks if raw.found else None)
            gaps.append(inner_lip_gap(raw.landmarks) if raw.found else np.nan)
            g = gaze(raw.landmarks, t) if raw.found else None
            gazes.append(np.full(2, np.nan) if g is None else g)
    finally:
        estimator.close()
    return frames, np.array(params), np.array(gaps), np.array(gazes), landmarks


def sample_frames(n_frames: int, first: int, count: int) -> np.ndarray:
    return np.unique(np.linspace(first, n_frames - 1, min(count, n_frames - first)).round().astype(int))


def run_pair(args, reenactor, measurer, protocol: str, avatar_name: str, photo: Path, driver: Path,
             rows: list, strips: Path) -> tuple[list, list]:
    """One avatar driven by one clip: appends per-frame rows; returns (outputs, references) for LPIPS/FID."""
    import cv2

    from models.atomic_files import write_image_atomic as write_image
    from live.io.sources import read_image_rgb
    from bench.reenactment_metrics import eye_white, teeth_share
    from live.pipeline.motion import lips_gate, retarget_blinks
    from live.warp.driver_mouth import cut_mouth
    from models.face.gaze import measure_gaze
    from models.face.landmarks import PARAM_NAMES
    from models.identity.embedding import SAME_PERSON_DISTANCE, distance
    frames, params, gaps, gazes, landmarks = tracked_driver(driver, until=10**6)
    found = np.isfinite(params).all(1)
    if not found.any():
        raise SystemExit(f"{driver}: no face found in any frame; give a clip where the face is visible")
    first = int(np.argmax(found))
    if len(frames) - first < 2:
        raise SystemExit(f"{driver}: a face in only {len(frames) - first} frame(s) from its first; the protocol "
                         f"needs a driving motion (at least 2 frames)")
    if protocol == "self":
        cv2.imwrite(str(photo), frames[first][:, :, ::-1])
    reenactor.make(photo)
    still = reenactor.render(np.zeros(len(reenactor.to_norm)))
    m_still = measurer(still)
    if protocol == "cross":   # identity is judged against the portrait, cropped as the avatar was
        photo_ref = measurer(reenactor.to_eval(read_image_rgb(photo)))
        if not photo_ref.found:
            raise SystemExit(f"{photo}: the tracker finds no face in the avatar's crop of it")
    picked = sample_frames(len(frames), first, args.frames)
    driver_white = eye_white(frames[first], landmarks[first]) if landmarks[first] is not None else None
    still_white = eye_white(still, m_still.landmarks) if m_still.found else None
    outputs, refs, strip = [], [], []
    for k in picked:
        # as live run does, the first frame as rest: blinks retargeted, the jaw as the lips show it
        change = np.nan_to_num(params[k] - params[first])
        if reenactor.retargets_blinks:
            change = retarget_blinks(change, list(PARAM_NAMES), params[first], reenactor.own, reenactor.shut)
        delta = lips_gate(change * reenactor.to_norm, gaps[k] if np.isfinite(gaps[k]) else None, PARAM_NAMES.index("jaw"),
                          float(np.nan_to_num(gaps[first])))
        gaze = gazes[k] if np.isfinite(gazes[k]).all() else None
        mouth = cut_mouth(frames[k], landmarks[k]) if args.mouth == "driver" and landmarks[k] is not None else None
        out = reenactor.render(delta, gaze, mouth)
        m_out = measurer(out)
        base = {"protocol": protocol, "avatar": avatar_name, "driver": driver.name, "frame": int(k),
                "driver_face": bool(found[k])}
        if protocol == "self":
            ref_img = reenactor.to_eval(frames[k])
            m_ref = measurer(ref_img)
            real = reenactor.at_output_resolution(frames[k])
            ref_teeth = (teeth_share(ref_img, m_ref.landmarks, driver_white)
                         if m_ref.found and driver_white is not None else float("nan"))
            for method, img, m in (("output", out, m_out), ("still", still, m_still), ("real", real, measurer(real))):
                white = driver_white if method == "real" else still_white
                teeth = teeth_share(img, m.landmarks, white) if m.found and white is not None else float("nan")
                rows.append({**base, "method": method, **compare(m, m_ref, img, ref_img), "teeth": teeth,
                             "teeth_target": ref_teeth})
            outputs.append(out)
            refs.append(ref_img)
            strip.append(np.concatenate([ref_img, out], axis=0))
        else:
            # the driver's change as the loop asks for it (blinks retargeted)
            target = m_still.params + change if m_still.found and found[k] else None
            target_gaze = (measure_gaze(m_still.landmarks) + gaze) if m_still.found and gaze is not None else None
            for method, m in (("output", m_out), ("still", m_still)):
                row = compare(m, FaceMeasure(False), target_params=target, identity_ref=photo_ref.embedding,
                              target_gaze=target_gaze)
                row["same_as_avatar"] = bool(m.found and m_still.found
                                             and distance(m.embedding, m_still.embedding) < SAME_PERSON_DISTANCE)
                img = out if method == "output" else still
                row["teeth"] = (teeth_share(img, m.landmarks, still_white)
                                if m.found and still_white is not None else float("nan"))
                row["teeth_target"] = (teeth_share(frames[k], landmarks[k], driver_white)
                                       if landmarks[k] is not None and driver_white is not None else float("nan"))
                rows.append({**base, "method": method, **row})
            strip.append(np.concatenate([_fit(frames[k]), out], axis=0))
    keep = np.linspace(0, len(strip) - 1, min(6, len(strip))).round().astype(int)
    write_image(strips / f"strip-{protocol}-{Path(avatar_name).stem}-{driver.stem}.png",
                np.concatenate([strip[i] for i in keep], axis=1))
    return outputs, refs


def _fit(frame: np.ndarray) -> np.ndarray:
    from bench.reenactors import upscale
    from live.io.sources import letterbox
    side = max(frame.shape[:2])
    return upscale(letterbox(frame, (side, side)))


def summarise(rows: list) -> list[dict]:
    out = []
    for protocol in ("self", "cross"):
        for method in ("output", "still", "real"):
            sel = [r for r in rows if r["protocol"] == protocol and r["method"] == method]
            if not sel:
                continue
            s = {"protocol": protocol, "method": method, "frames": len(sel),
                 "faces": f"{sum(r['face'] for r in sel)}/{len(sel)}"}
            for m in METRICS:
                values = [r[m] for r in sel if m in r and np.isfinite(r[m])]
                s[m] = round(float(np.mean(values)), 3) if values else None
            faces = [r for r in sel if r["face"]]
            if faces and "same_as_avatar" in faces[0]:
                s["same_as_avatar"] = f"{sum(r['same_as_avatar'] for r in faces)}/{len(faces)}"
            for name in PEARSON:
                s[f"{name}_r"] = pearson(sel, name)
            both = [(r["teeth"], r["teeth_target"]) for r in sel
                    if np.isfinite(r.get("teeth", np.nan)) and np.isfinite(r.get("teeth_target", np.nan))]
            if both:     # frames where the avatar shows teeth exactly when the driver does
                s["teeth_agree"] = round(float(np.mean([(a > SHOWS_TEETH) == (b > SHOWS_TEETH) for a, b in both])), 3)
            out.append(s)
    return out


def pearson(rows: list, name: str) -> float | None:
    """Pearson of the output's tracked parameter with the target's (the real frame's, or the avatar's own
    plus the driver's change), per (avatar, driver) pair, averaged over pairs; None where it cannot move."""
    values = []
    for pair in sorted({(r["avatar"], r["driver"]) for r in rows}):
        sel = [(r[name], r[f"{name}_target"]) for r in rows if (r["avatar"], r["driver"]) == pair
               and np.isfinite(r.get(name, np.nan)) and np.isfinite(r.get(f"{name}_target", np.nan))]
        got, want = np.array(sel).T if sel else (np.zeros(0), np.zeros(0))
        if len(sel) >= 3 and got.std() > 1e-6 and want.std() > 1e-6:
            values.append(np.corrcoef(got, want)[0, 1])
    return round(float(np.mean(values)), 3) if values else None


def run(args: argparse.Namespace) -> dict:
    import torch

    from bench.perceptual_metrics import perceptual_summary
    from live.model_store import ModelStore
    from models.checkpoint import load_generator
    from models.direction_matrix import Directions
    start = time.perf_counter()
    store = ModelStore()
    G = load_generator(store.resolve(args.generator)) if args.generator else None
    d = Directions.load(store.resolve(args.directions)) if args.directions else None
    if d is not None and G is not None:
        from models.checkpoint import weights_hash
        d.check_generator(weights_hash(G))
    reenactor = make_reenactor(args.renderer, G, d, framing=args.framing, steps=args.steps,
                               tune_steps=args.tune_steps, identity_guard=args.identity_guard)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    measurer = Measurer()
    rows, outputs, refs = [], [], []
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        for clip in args.clips:
            o, r = run_pair(args, reenactor, measurer, "self", clip, Path(tmp) / f"{Path(clip).stem}.png",
                            _media(args, clip), rows, out)
            outputs += o
            refs += r
        for portrait in args.portraits:
            for driver in args.drivers:
                run_pair(args, reenactor, measurer, "cross", portrait, _media(args, portrait), _media(args, driver),
                         rows, out)
    measurer.close()
    with atomic_path(out / "frames.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    summary = summarise(rows)
    record = {"bench": "quality", "renderer": args.renderer, "mouth": args.mouth, "generator": args.generator,
              "directions": args.directions,
              "frames_per_clip": args.frames, "avatar_steps": [args.steps, args.tune_steps], "summary": summary,
              "perceptual": perceptual_summary(outputs, refs) if outputs else {},
              "seconds": round(time.perf_counter() - start, 1), "machine": machine()}
    write_text_atomic(out / "summary.json", json.dumps(record, indent=1))
    write_text_atomic(out / "summary.md", markdown(summary, record))
    append_json(args.json, record)
    print_table(f"reenactment quality ({args.renderer}; {args.frames} frames per clip; {record['seconds']} s)",
                summary, [("protocol", "protocol"), ("method", "method"), ("faces", "faces"), ("csim", "CSIM"),
                          ("psnr", "PSNR"), ("mouth_psnr", "mouth PSNR"), ("ssim", "SSIM"), ("nme", "NME %"), ("pose_err", "pose deg"),
                          ("exp_err", "expr sd"), ("gaze_err", "gaze err"), ("same_as_avatar", "same person"),
                          ("yaw_r", "yaw r"), ("pitch_r", "pitch r"), ("jaw_r", "jaw r"),
                          ("teeth_r", "teeth r"), ("teeth_agree", "teeth agree")])
    print("LPIPS / FID / FVD: " + ", ".join(f"{k} {v}" for k, v in record["perceptual"].items()))
    return record


def markdown(summary: list[dict], record: dict) -> str:
    cols = (["protocol", "method", "faces", "same_as_avatar", "yaw_r", "pitch_r", "jaw_r", "teeth_r", "teeth_agree"]
            + list(METRICS))
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    lines += ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |" for r in summary]
    lines += ["", "LPIPS / FID / FVD: " + ", ".join(f"{k} {v}" for k, v in record["perceptual"].items())]
    return "\n".join(lines) + "\n"
