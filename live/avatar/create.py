"""One photo in, one avatar out: find the face, crop it, invert, tune, track, package."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from loguru import logger

from live.avatar.avatar_file import Avatar, AvatarError, tuning_delta
from live.avatar.face_reader import FaceReader, TrackerFaceReader
from live.avatar.invert import InversionConfig, WPrior, invert, psnr
from live.avatar.likeness import Likeness, judge_likeness, make_face_terms
from live.avatar.pti import TuningConfig, pivotal_tuning
from live.io.sources import read_image_rgb
from models.framing import FRAMINGS, crop_transform
from models.identity.face_chip import five_points_from_mesh
from models.images import to_uint8_rgb

POOR_PSNR_DB = 21.0  # below this the generator does not draw this face well; say so
THUMB = 256


@dataclass
class AvatarOptions:
    framing: str = "voxceleb"
    face_index: int = 0                 # 0 = the largest face in the photo
    pti: bool = True
    inversion: InversionConfig = field(default_factory=InversionConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    encoder: Path | None = None         # e4e checkpoint: its code is the starting point
    identity_threshold: float = 0.5     # identity limits: dlib distance from the avatar's own render
    progress: bool = True


@dataclass
class CreationReport:
    psnr_inversion: float
    psnr_tuned: float
    seconds: dict[str, float]
    faces_in_photo: int
    p_s_source: str                     # "reconstruction" or "photo" (when the reconstruction was not tracked)
    # dlib's verdict on the reconstruction against the photo crop (None: no judge here, live/avatar/likeness.py)
    likeness_inversion: Likeness | None = None
    likeness: Likeness | None = None    # of the final reconstruction (tuned, or inverted with --no-pti)


def find_face(photo: np.ndarray, face_index: int, source: str, faces: FaceReader) -> tuple[np.ndarray, int]:
    """Landmarks [478, 3] of the chosen face and how many faces the photo has."""
    found = faces.find_faces(photo)
    if not found:
        raise AvatarError(f"{source}: no face found. Use a photo where the face is clearly visible, frontal or "
                          f"slightly turned, at least 64 px across (100 or more looks better).")
    if face_index >= len(found):
        raise AvatarError(f"{source}: --face {face_index} asked for, but the photo has {len(found)} face(s) "
                          f"(0 = the largest)")
    if len(found) > 1:
        logger.info("{} faces in the photo; using face {} (0 = the largest; --face N picks another)",
                    len(found), face_index)
    return found[face_index], len(found)


def _to_tensor(image_uint8: np.ndarray, device) -> torch.Tensor:
    return (torch.from_numpy(np.ascontiguousarray(image_uint8)).permute(2, 0, 1)[None].float() / 127.5 - 1).to(device)


def _thumb(image: np.ndarray) -> np.ndarray:
    import cv2
    h, w = image.shape[:2]
    s = THUMB / max(h, w)
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA) if s < 1 else image


def encoder_start(encoder_path: Path, G, crop: torch.Tensor) -> torch.Tensor:
    """e4e's code for the crop (resized to the encoder's 256 px input), plus the mean code."""
    from models.e4e import load_e4e
    enc, latent_avg = load_e4e(encoder_path, n_styles=G.n_latent)
    enc = enc.to(crop.device)
    x = F.interpolate(crop, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():
        codes = enc(x)[0]
    mean = latent_avg.to(codes) if latent_avg is not None else G.w_avg
    return codes + (mean if mean.ndim == 2 else mean.expand(G.n_latent, -1))


def create_avatar(photo_path: str | Path, G, opts: AvatarOptions, generator_hint: str = "",
                  directions_sha256: str = "", directions=None, faces: FaceReader | None = None,
                  identity=None) -> tuple[Avatar, CreationReport]:
    """The avatar of the face in the photo; with `directions`, also how far each of them may move it
    before it stops being this face (the identity guard's limits). `faces` answers for the tracker
    (default: MediaPipe; a replayed recording where MediaPipe is missing), `identity` embeds faces for
    the limits and judges the reconstruction (default: dlib's descriptor); with a network of its own
    (models/identity/torch_identity.py) that network also serves the identity and perceptual terms."""
    from models.checkpoint import weights_hash
    if opts.framing not in FRAMINGS:
        raise AvatarError(f"unknown framing {opts.framing!r}; choose one of {', '.join(FRAMINGS)}")
    own_reader = faces is None
    faces = faces or TrackerFaceReader(max_faces=max(opts.face_index + 1, 4))
    try:
        return _create(photo_path, G, opts, generator_hint, directions_sha256, directions, faces, identity,
                       weights_hash)
    finally:
        if own_reader:
            faces.close()


def _create(photo_path, G, opts: AvatarOptions, generator_hint, directions_sha256, directions, faces: FaceReader,
            identity, weights_hash) -> tuple[Avatar, CreationReport]:
    timings = {}
    t0 = time.perf_counter()
    photo = read_image_rgb(photo_path)
    landmarks, n_faces = find_face(photo, opts.face_index, str(photo_path), faces)
    transform = crop_transform(landmarks, opts.framing, G.resolution)
    crop = transform.apply(photo)
    device = G.w_avg.device
    target = _to_tensor(crop, device)
    crop_landmarks = landmarks[:, :2] @ transform.matrix[:, :2].T + transform.matrix[:, 2]
    crop_points = five_points_from_mesh(crop_landmarks)     # dlib's 5 points in the crop: the face terms' chips
    timings["find and crop"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    inv, tune = opts.inversion, opts.tuning
    face = make_face_terms(G, target, crop_points, (inv.identity_weight, inv.perceptual_weight) +
                           ((tune.identity_weight, tune.perceptual_weight) if opts.pti else ()), identity)
    init = encoder_start(Path(opts.encoder), G, target) if opts.encoder else None
    prior = WPrior.of(G)
    w_s, _ = invert(G, target, inv, prior, init=init, progress=opts.progress, face=face)
    with torch.no_grad():
        recon = G.synthesize(w_s[None])
    psnr_inv = psnr(recon, target)
    recons = [to_uint8_rgb(recon)[0]]
    timings["inversion"] = time.perf_counter() - t0
    logger.info("inversion: {:.2f} dB PSNR over the crop ({:.0f} s)", psnr_inv, timings["inversion"])

    tuned, psnr_tuned, G_use = {}, float("nan"), G
    if opts.pti:
        t0 = time.perf_counter()
        G_use, _ = pivotal_tuning(G, w_s, target, tune, progress=opts.progress, face=face)
        with torch.no_grad():
            recon = G_use.synthesize(w_s[None])
        psnr_tuned = psnr(recon, target)
        recons.append(to_uint8_rgb(recon)[0])
        tuned = tuning_delta(G, G_use)
        timings["pivotal tuning"] = time.perf_counter() - t0
        logger.info("pivotal tuning: {:.2f} dB ({:.0f} s)", psnr_tuned, timings["pivotal tuning"])
    final = psnr_tuned if opts.pti else psnr_inv
    if final < POOR_PSNR_DB:
        logger.warning("the reconstruction is poor ({:.1f} dB PSNR, below {:.0f}): this generator cannot draw this "
                       "face well. The avatar works but will look less like the photo; a generator trained on "
                       "similar faces (or on footage of this person, `live gan train`) does better.",
                       final, POOR_PSNR_DB)
    t0 = time.perf_counter()
    judged = judge_likeness(crop, recons, crop_landmarks, identity)
    likeness = judged[-1] if judged else None
    if likeness is not None and not likeness.same_person:
        logger.warning("the reconstruction is not the photo's person by dlib ({}); the avatar works but will look "
                       "like someone else", likeness.meaning())
    timings["identity check"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    recon_uint8 = recons[-1]
    p_s, p_source = _track_params(recon_uint8, crop, faces)
    timings["tracking"] = time.perf_counter() - t0
    limits = None
    if directions is not None:
        from live.avatar.identity_limits import identity_limits
        t0 = time.perf_counter()
        limits = identity_limits(G_use, w_s, directions.to(device), opts.identity_threshold, identity=identity,
                                 face_points=crop_points)
        timings["identity limits"] = time.perf_counter() - t0

    avatar = Avatar(w_s=w_s.cpu(), p_s=torch.from_numpy(p_s).float(), crop=crop, crop_matrix=transform.matrix,
                    photo_size=(photo.shape[1], photo.shape[0]), framing=opts.framing,
                    generator_sha256=weights_hash(G), generator_hint=generator_hint,
                    directions_sha256=directions_sha256, tuned=tuned, photo_thumb=_thumb(photo),
                    reconstruction=recon_uint8, psnr_inversion=psnr_inv, psnr_tuned=psnr_tuned,
                    created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                    source_photo=str(photo_path), identity_limits=limits,
                    directions=directions.to_file_dict() if directions is not None else None)
    avatar.generator = G_use
    return avatar, CreationReport(psnr_inv, psnr_tuned, timings, n_faces, p_source,
                                  judged[0] if judged else None, likeness)


def _track_params(recon: np.ndarray, crop: np.ndarray, faces: FaceReader) -> tuple[np.ndarray, str]:
    """p_s from the reconstruction (what the generator draws is what directions move); the photo's
    crop when the tracker does not find the face in the reconstruction."""
    for image, source in ((recon, "reconstruction"), (crop, "photo")):
        params = faces.params(image[None])
        if np.isfinite(params[0]).all():
            if source != "reconstruction":
                logger.warning("no face tracked in the reconstruction; p_s comes from the photo's crop")
            return params[0], source
    raise AvatarError("the tracker finds no face in the reconstruction nor in the crop; try another photo")
