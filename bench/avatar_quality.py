"""Avatar creation quality and time (the #5 acceptance figures).

For each photo: the frame at 1 s of a clip (full frame, as a photo) or a portrait; the face is
found, cropped with the generator's framing, inverted, tuned and tracked with the defaults
of `live avatar create`. Reported: PSNR over the crop without and with tuning, how well tuning
keeps the latent space (PSNR between the tuned and the untouched generator on random codes at
truncation 0.7: mean and minimum), and the time of each stage.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.records import append_json, machine
from live.cli.table import print_table

DEFAULT_PHOTOS = ("vox_driving.mp4", "lp_d3.mp4", "lp_d10.mp4", "portrait_mona_lisa.jpg")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", "-g", required=True)
    p.add_argument("--framing", default="fixture", choices=["fixture", "voxceleb", "ffhq"])
    p.add_argument("--media", default="../shared/media", help="folder of the clips and portraits")
    p.add_argument("--photos", nargs="+", default=list(DEFAULT_PHOTOS),
                   help="clips (their frame at 1 s is used) or images, in --media")
    p.add_argument("--steps", type=int, default=None, help="inversion steps (default: live avatar create's)")
    p.add_argument("--tune-steps", type=int, default=None, help="tuning steps (default: live avatar create's)")
    p.add_argument("--locality-weight", type=float, default=None, help="tuning's locality weight (default: "
                   "live avatar create's)")
    p.add_argument("--locality-batch", type=int, default=None, help="tuning's locality codes per step (default: "
                   "live avatar create's)")
    p.add_argument("--codes", type=int, default=20, help="random codes for the latent-space check")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default="bench/results.json")


def frame_at(path: Path, seconds: float = 1.0) -> np.ndarray:
    from live.io.sources import iter_video_rgb, video_fps
    index = int(round(video_fps(path) * seconds))
    frame = None
    for k, _, f in iter_video_rgb(path, max_frames=index + 1):
        frame = f
    if frame is None:
        raise ValueError(f"{path}: no frame at {seconds} s")
    return frame


def run(args: argparse.Namespace) -> dict:
    import cv2

    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig, psnr
    from live.avatar.pti import TuningConfig
    from models import load_generator
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    G = load_generator(args.generator, device)
    inv, tune = InversionConfig(), TuningConfig()
    if args.steps:
        inv.steps = args.steps
    if args.tune_steps:
        tune.steps = args.tune_steps
    if args.locality_weight is not None:
        tune.locality_weight = args.locality_weight
    if args.locality_batch is not None:
        tune.locality_batch = args.locality_batch
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
            opts = AvatarOptions(framing=args.framing, inversion=inv, tuning=tune, progress=False)
            avatar, report = create_avatar(photo, G, opts)
            with torch.no_grad():
                keep = [psnr(avatar.generator.synthesize(c[None]), u[None]) for c, u in zip(codes, untouched)]
            rows.append({"photo": name, "psnr_inversion": round(report.psnr_inversion, 2),
                         "psnr_tuned": round(report.psnr_tuned, 2), "keep_mean": round(float(np.mean(keep)), 2),
                         "keep_min": round(float(np.min(keep)), 2),
                         "seconds": round(sum(report.seconds.values()), 1),
                         "stages": {k: round(v, 1) for k, v in report.seconds.items()}, "p_s_from": report.p_s_source})
    record = {"bench": "avatar", "generator": args.generator, "framing": args.framing, "device": device,
              "inversion_steps": inv.steps, "tuning_steps": tune.steps, "locality_weight": tune.locality_weight,
              "locality_batch": tune.locality_batch, "rows": rows, "machine": machine()}
    append_json(args.json, record)
    print_table(f"avatar creation ({device}; {inv.steps} inversion + {tune.steps} tuning steps)", rows,
                [("photo", "photo"), ("psnr_inversion", "PSNR inverted dB"), ("psnr_tuned", "PSNR tuned dB"),
                 ("keep_mean", "latent kept, mean dB"), ("keep_min", "min dB"), ("seconds", "time s")])
    clips = [r for r in rows if not r["photo"].startswith("portrait")]
    if clips:
        print(f"clip frames: mean PSNR inverted {np.mean([r['psnr_inversion'] for r in clips]):.2f} dB, "
              f"tuned {np.mean([r['psnr_tuned'] for r in clips]):.2f} dB")
    return record
