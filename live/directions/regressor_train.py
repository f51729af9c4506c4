"""`live directions regressor`: distil the tracker into a differentiable regressor for a generator.

The faces (live/directions/regressor_data.py) are split: one real clip held out whole (a person the
regressor never saw) and a tenth of the generated faces. After training, its agreement with the tracker
on the held-out faces is measured per parameter: R^2 (the share of the tracker's variation the regressor
reproduces: 1 is perfect, 0 is no better than always answering the mean) and the mean absolute error in
the parameter's own units (degrees for pose, standard deviations for expressions). The table is printed,
stored in the file, and is what says whether a trained direction matrix can trust it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger

from live.directions.regressor_data import FaceSet, collect_faces
from live.options import option
from models.checkpoint import weights_hash
from models.face.landmarks import PARAM_NAMES
from models.face_regressor import FaceParamRegressor, RegressorInfo
from models.face.shape_model import FaceModel, default_model_path
from models.weights_io import file_sha256

DEFAULT_CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")


@dataclass
class RegressorOptions:
    generated: int = option(1500, "generated faces to learn from")
    clips: list = option([], "real talking-head clips to learn from as well, cut in the generator's framing (the "
                             "last one is held out to measure agreement); none: the shared clips in --media",
                         metavar="CLIP")
    media: str = option("../shared/media", "folder of the default clips")
    framing: str | None = option(None, "the generator's framing (fixture, voxceleb, ffhq); none: known from its "
                                       "weights, else voxceleb")
    size: int = option(96, "the regressor's input size in pixels")
    epochs: int = option(15, "passes over the faces")
    batch: int = option(32, "faces per step")
    lr: float = option(2e-3, "Adam learning rate (cosine decay)")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    seed: int = option(0, "random seed")


def default_clips(opts: RegressorOptions) -> list[Path]:
    if opts.clips:
        return [Path(c) for c in opts.clips]
    clips = [Path(opts.media) / c for c in DEFAULT_CLIPS]
    found = [c for c in clips if c.is_file()]
    if not found:
        logger.warning("no talking-head clips in {} (--media): the regressor learns from generated faces only and "
                       "its agreement on real footage is not measured; give --clips or --media", opts.media)
    return found


def train_regressor(G, opts: RegressorOptions, framing: str, cache_dir: Path) -> FaceParamRegressor:
    from live.engines.devices import resolve_device
    device = resolve_device(opts.device)
    torch.manual_seed(opts.seed)
    start = time.perf_counter()
    clips = default_clips(opts)
    model_sha = file_sha256(default_model_path())
    faces, names = collect_faces(G, framing, clips, opts.generated, opts.size, cache_dir, weights_hash(G), model_sha)
    if len(faces) < 50:
        raise ValueError(f"the tracker found a face in only {len(faces)} of the generator's renders and clip frames: "
                         f"this generator does not draw faces it can learn from (a face generator in the "
                         f"{framing} framing is needed)")
    train, held = split(faces, n_clips=len(clips))
    info = RegressorInfo(PARAM_NAMES, FaceModel.load().param_range, size=opts.size, framing=framing,
                         face_model_sha256=model_sha)
    net = FaceParamRegressor(info).to(device)
    fit(net, train, opts, device)
    info.agreement = {"held-out clip " + (names[-1] if len(names) > 1 else "(none)"): agreement(net, held["real"], device),
                      "held-out generated": agreement(net, held["generated"], device)}
    info.trained = {"faces": len(train), "generated": opts.generated, "clips": names, "epochs": opts.epochs,
                    "seconds": round(time.perf_counter() - start, 1)}
    return net.cpu().eval()


def split(faces: FaceSet, n_clips: int) -> tuple[FaceSet, dict[str, FaceSet]]:
    """Training faces, and the held-out ones: the last clip whole (when there are two or more), a tenth of
    the generated faces (every tenth)."""
    generated = np.flatnonzero(faces.source == 0)
    held_gen = generated[::10]
    held_real = faces.source == n_clips if n_clips >= 2 else np.zeros(len(faces), bool)
    train = np.ones(len(faces), bool)
    train[held_gen] = False
    train &= ~held_real
    return faces.subset(train), {"generated": faces.subset(held_gen), "real": faces.subset(held_real)}


def mirror_map() -> tuple[np.ndarray, np.ndarray]:
    """How the parameters change in a left-right mirror: (source index of each, sign). Yaw and roll turn
    the other way; the left and right smiles and blinks swap; the mouth shifts the other way."""
    from models.face.landmarks import MIRROR_PARTNER, MIRROR_SIGN
    index = np.array([PARAM_NAMES.index(MIRROR_PARTNER.get(n, n)) for n in PARAM_NAMES])
    sign = np.array([-1.0 if n in ("yaw", "roll") else MIRROR_SIGN.get(n, 1.0) for n in PARAM_NAMES])
    return index, sign


MIRROR_INDEX, MIRROR_SIGN_ = mirror_map()
MIRROR_POINTS = [2, 3, 0, 1, 4]     # dlib's 5 points: one eye's corners for the other's, the nose stays


def _batch(faces: FaceSet, idx: np.ndarray, device, augment: np.random.Generator | None = None):
    x = torch.from_numpy(faces.images[idx]).permute(0, 3, 1, 2).float().to(device) / 127.5 - 1
    p = torch.from_numpy(faces.params[idx]).float().to(device)
    pts = torch.from_numpy(faces.points[idx]).float().to(device)
    if augment is not None:
        # lighting: brightness and contrast vary between videos, the answers do not
        gain = torch.from_numpy(augment.uniform(0.8, 1.2, (len(idx), 1, 1, 1))).float().to(device)
        bias = torch.from_numpy(augment.uniform(-0.1, 0.1, (len(idx), 1, 1, 1))).float().to(device)
        x = (x * gain + bias).clamp(-1, 1)
        # mirror half the faces (the tracker is exactly left-right equivariant: its flip averaging), so a few
        # people of real footage teach twice as many
        flip = torch.from_numpy(augment.random(len(idx)) < 0.5).to(device)
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        mirrored_p = p[:, MIRROR_INDEX] * torch.from_numpy(MIRROR_SIGN_).float().to(device)
        mirrored_pts = pts[:, MIRROR_POINTS] * torch.tensor([-1.0, 1.0], device=device) + torch.tensor([1.0, 0.0],
                                                                                                     device=device)
        p = torch.where(flip[:, None], mirrored_p, p)
        pts = torch.where(flip[:, None, None], mirrored_pts, pts)
    return x, p, pts


def fit(net: FaceParamRegressor, faces: FaceSet, opts: RegressorOptions, device) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    rng = np.random.default_rng(opts.seed)
    steps_per_epoch = max(len(faces) // opts.batch, 1)
    total = opts.epochs * steps_per_epoch
    optimiser = torch.optim.AdamW(net.parameters(), lr=opts.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    net.train()
    columns = [TextColumn("training the regressor"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    last_log = time.perf_counter()
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("fit", total=total, info="")
        for epoch in range(opts.epochs):
            order = rng.permutation(len(faces))
            for k in range(steps_per_epoch):
                x, p, pts = _batch(faces, order[k * opts.batch:(k + 1) * opts.batch], device, rng)
                pred, pred_pts = net.normalised(x)
                loss_p = F.smooth_l1_loss(pred, net.to_normalised(p), beta=0.1)
                loss_pts = F.mse_loss(pred_pts, pts)
                loss = loss_p + 10 * loss_pts
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                schedule.step()
                info = (f"parameters {loss_p.item():.4f} (of the range), points "
                        f"{math.sqrt(loss_pts.item()) * 100:.1f}% of the crop (RMS)")
                bar.update(task, advance=1, info=info)
                if time.perf_counter() - last_log >= 60:    # the bar is invisible in a log file
                    last_log = time.perf_counter()
                    logger.info("regressor: epoch {}/{}, step {}: {}", epoch + 1, opts.epochs,
                                epoch * steps_per_epoch + k + 1, info)
    net.eval()


@torch.no_grad()
def predict(net: FaceParamRegressor, faces: FaceSet, device, batch: int = 64) -> tuple[np.ndarray, np.ndarray]:
    params, points = [], []
    for start in range(0, len(faces), batch):
        x, _, _ = _batch(faces, np.arange(start, min(start + batch, len(faces))), device)
        p, pts = net(x)
        params.append(p.cpu().numpy())
        points.append(pts.cpu().numpy() / faces.images.shape[1])
    return (np.concatenate(params), np.concatenate(points)) if params else (np.zeros((0, net.n_params)),
                                                                             np.zeros((0, 5, 2)))


def agreement(net: FaceParamRegressor, faces: FaceSet, device) -> dict:
    """Per parameter: R^2 and mean absolute error (raw units) against the tracker; points' mean error in % of
    the crop. Empty when there are no faces."""
    if len(faces) < 2:
        return {}
    params, points = predict(net, faces, device)
    truth = faces.params
    r2 = 1 - ((params - truth) ** 2).sum(0) / np.maximum(((truth - truth.mean(0)) ** 2).sum(0), 1e-12)
    mae = np.abs(params - truth).mean(0)
    return {"faces": len(faces), "r2": dict(zip(PARAM_NAMES, np.round(r2, 3).tolist())),
            "mean_abs_error": dict(zip(PARAM_NAMES, np.round(mae, 3).tolist())),
            "points_error_pct": round(float(np.linalg.norm(points - faces.points, axis=-1).mean() * 100), 2)}
