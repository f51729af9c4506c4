"""Avatar creation quality and time (the #5 acceptance figures).

For each photo: the frame at 1 s of a clip (full frame, as a photo) or a portrait; the face is
found, cropped with the generator's framing, inverted, tuned and tracked with the defaults
of `live avatar create`. Reported: PSNR over the crop without and with tuning, identity as dlib judges
it (CSIM of the reconstruction with the photo crop after inversion and after tuning, dlib's distance and
its same-person rule, < 0.6), how well tuning keeps the latent space (PSNR between the tuned and the
untouched generator on random codes at truncation 0.7: mean and minimum), and the time of each stage.

--face-weights compares settings of the identity and perceptual terms on the same photos, alternating
(every variant on a photo before the next photo, so a change in the machine's load falls on all of them):
"default" (the configs'), "off" (pixels only, as before the terms), "I,P" (identity and perceptual
weight for inversion and tuning both) or "I,P/TI,TP" (inversion's, then tuning's).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.records import append_json, default_json, machine
from live.cli.table import print_table

DEFAULT_PHOTOS = ("vox_driving.mp4", "lp_d3.mp4", "lp_d10.mp4", "portrait_mona_lisa.jpg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", required=True)
    p.add_argument("--framing", default="fixture", choices=["fixture", "voxceleb", "ffhq"])
    p.add_argument("--media", default="../shared/media", help="folder of the clips and portraits")
    p.add_argument("--photos", nargs="+", default=list(DEFAULT_PHOTOS),
                   help="clips (their frame at 1 s is used) or images, in --media")
    p.add_argument("--steps", type=int, default=None, help="inversion steps (default: live avatar create's)")
    p.add_argument("--tune-steps", type=int, default=None, help="tuning steps (default: live avatar create's; 0: "
                   "inversion alone)")
    p.add_argument("--locality-weight", type=float, default=None, help="tuning's locality weight (default: "
                   "live avatar create's)")
    p.add_argument("--locality-batch", type=int, default=None, help="tuning's locality codes per step (default: "
                   "live avatar create's)")
    p.add_argument("--face-weights", nargs="+", default=["default"], metavar="SPEC",
                   help="variants of the identity and perceptual weights, each run on every photo: default, off, "
                   "I,P (both stages) or I,P/TI,TP (inversion/tuning)")
    p.add_argument("--codes", type=int, default=20, help="random codes for the latent-space check")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=default_json())


def frame_at(path: Path, seconds: float = 1.0) -> np.ndarray:
    from live.io.sources import iter_video_rgb, video_fps
    index = int(round(video_fps(path) * seconds))
    frame = None
    for k, _, f in iter_video_rgb(path, max_frames=index + 1):
        frame = f
    if frame is None:
        raise ValueError(f"{path}: no frame at {seconds} s")
    return frame


def face_weights(spec: str) -> dict[str, float]:
    """A --face-weights variant as InversionConfig/TuningConfig fields ({} for the defaults)."""
    if spec == "default":
        return {}
    if spec == "off":
        spec = "0,0"
    try:
        stages = [[float(v) for v in part.split(",")] for part in spec.split("/")]
        if len(stages) == 1:
            stages *= 2
        (i, p), (ti, tp) = stages
    except ValueError:
        raise ValueError(f"--face-weights {spec!r}: expected default, off, I,P or I,P/TI,TP (numbers)") from None
    if min(i, p, ti, tp) < 0:
        raise ValueError(f"--face-weights {spec!r}: weights must be >= 0")
    return {"identity_weight": i, "perceptual_weight": p, "tune_identity_weight": ti, "tune_perceptual_weight": tp}


def _round(value: float | None, digits: int):
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def run(args: argparse.Namespace) -> dict:
    import cv2

    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig, psnr
    from live.avatar.pti import TuningConfig
    from models import load_generator
    variants = {spec: face_weights(spec) for spec in args.face_weights}
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    G = load_generator(args.generator, device)
    inv, tune = InversionConfig(), TuningConfig()
    if args.steps:
        inv.steps = args.steps
    if args.tune_steps is not None:
        tune.steps = args.tune_steps
    if args.locality_weight is not None:
        tune.locality_weight = args.locality_weight
    if args.locality_batch is not None:
        tune.locality_batch = args.locality_batch

    def configs(weights: dict[str, float]) -> tuple[InversionConfig, TuningConfig]:
        i, t = dataclasses.replace(inv), dataclasses.replace(tune)
        for key, value in weights.items():
            setattr(t if key.startswith("tune_") else i, key.removeprefix("tune_"), value)
        return i, t
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        codes = G.broadcast(G.mapping(torch.randn(args.codes, G.style_dim, generator=g).to(device), 0.7))
        untouched = torch.cat([G.synthesize(c[None]) for c in codes])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.photos:
            src = Path(args.media) / name
            if src.suffix.lower() in (".mp4", ".mov", ".avi", ".mkv"):
                photo = Path(tmp) / (src.stem + "_1s.png")
                cv2.imwrite(str(photo), frame_at(src)[:, :, ::-1])
            else:
                photo = src
            for spec, weights in variants.items():       # alternating: every variant on this photo
                i, t = configs(weights)
                opts = AvatarOptions(framing=args.framing, inversion=i, tuning=t, pti=t.steps > 0, progress=False)
                avatar, report = create_avatar(photo, G, opts)
                with torch.no_grad():
                    keep = [psnr(avatar.generator.synthesize(c[None]), u[None]) for c, u in zip(codes, untouched)]
                li, lt = report.likeness_inversion, report.likeness
                rows.append({"photo": name, "face_weights": spec,
                             "weights": {"inversion": [i.identity_weight, i.perceptual_weight],
                                         "tuning": [t.identity_weight, t.perceptual_weight]},
                             "psnr_inversion": round(report.psnr_inversion, 2),
                             "psnr_tuned": round(report.psnr_tuned, 2),
                             "csim_inversion": _round(li.csim if li else None, 3),
                             "csim_tuned": _round(lt.csim if lt else None, 3),
                             "distance_tuned": _round(lt.distance if lt else None, 3),
                             "same_person": ("yes" if lt.same_person else "no") if lt else "not judged",
                             "keep_mean": round(float(np.mean(keep)), 2), "keep_min": round(float(np.min(keep)), 2),
                             "seconds": round(sum(report.seconds.values()), 1),
                             "stages": {k: round(v, 1) for k, v in report.seconds.items()},
                             "p_s_from": report.p_s_source})
                r = rows[-1]
                print(f"{name} [{spec}]: PSNR {r['psnr_inversion']} / {r['psnr_tuned']} dB, CSIM "
                      f"{r['csim_inversion']} / {r['csim_tuned']}, distance {r['distance_tuned']}, latent kept "
                      f"{r['keep_mean']} / {r['keep_min']} dB, {r['stages']}", flush=True)   # a long run's progress
    record = {"bench": "avatar", "generator": args.generator, "framing": args.framing, "device": device,
              "inversion_steps": inv.steps, "tuning_steps": tune.steps, "locality_weight": tune.locality_weight,
              "locality_batch": tune.locality_batch, "face_weights": args.face_weights, "rows": rows,
              "machine": machine()}
    append_json(args.json, record)
    print_table(f"avatar creation ({device}; {inv.steps} inversion + {tune.steps} tuning steps; CSIM and distance: "
                f"dlib's, reconstruction vs photo crop, same person when distance < 0.6)", rows,
                [("photo", "photo"), ("face_weights", "face weights"), ("psnr_inversion", "PSNR inverted dB"),
                 ("psnr_tuned", "PSNR tuned dB"), ("csim_inversion", "CSIM inverted"), ("csim_tuned", "CSIM tuned"),
                 ("distance_tuned", "distance"), ("same_person", "same person"),
                 ("keep_mean", "latent kept, mean dB"), ("keep_min", "min dB"), ("seconds", "time s")])
    for spec in variants:
        mine = [r for r in rows if r["face_weights"] == spec]
        clips = [r for r in mine if not r["photo"].startswith("portrait")]
        csims = [r["csim_tuned"] for r in mine if r["csim_tuned"] is not None]
        print(f"face weights {spec}: mean PSNR inverted {np.mean([r['psnr_inversion'] for r in mine]):.2f} dB, "
              f"tuned {np.mean([r['psnr_tuned'] for r in mine]):.2f} dB"
              + (f", mean CSIM {np.mean(csims):.3f}" if csims else "")
              + f", same person {sum(r['same_person'] == 'yes' for r in mine)}/{len(mine)}"
              + (f" (clip frames: tuned {np.mean([r['psnr_tuned'] for r in clips]):.2f} dB)" if clips else ""))
    return record
