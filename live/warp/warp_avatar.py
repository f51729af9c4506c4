"""The warp avatar file: the photo, the tracker's 3D mesh of it, its parameters. Nothing executable.

A plain torch container (weights_only), like the StyleGAN2 avatar's:
  format "live.avatar.warp", version
  photo [H, W, 3] uint8        the photo, at most MAX_SIDE px on its longer side
  landmarks [478, 3] float32   the face's mesh in the photo's pixels (flip-averaged tracking)
  p_s [15], param_names        its face parameters
  created, source_photo, faces_in_photo
  digest                       sha256 over all of the above: a changed byte is detected
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from live.avatar.avatar_file import WARP_FORMAT as FORMAT
from live.avatar.avatar_file import AvatarError, content_digest, read_avatar_file
from models.face.landmarks import PARAM_NAMES
from models.atomic_files import save_torch_atomic

VERSION = 1
MAX_SIDE = 720          # larger photos are downscaled: detail beyond this is not seen in a video call
MIN_FACE = 64           # px across: smaller faces warp into mush


@dataclass
class WarpAvatar:
    photo: np.ndarray
    landmarks: np.ndarray
    p_s: np.ndarray
    created: str = ""
    source_photo: str = ""
    faces_in_photo: int = 1
    param_names: tuple[str, ...] = PARAM_NAMES

    def to_dict(self) -> dict:
        d = {"format": FORMAT, "version": VERSION,
             "photo": torch.from_numpy(np.ascontiguousarray(self.photo, np.uint8)),
             "landmarks": torch.from_numpy(np.asarray(self.landmarks, np.float32)),
             "p_s": torch.from_numpy(np.asarray(self.p_s, np.float32)), "param_names": list(self.param_names),
             "created": self.created, "source_photo": self.source_photo, "faces_in_photo": int(self.faces_in_photo)}
        d["digest"] = content_digest(d)
        return d

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_torch_atomic(self.to_dict(), path)

    @classmethod
    def from_dict(cls, d: dict, path: Path) -> "WarpAvatar":
        if d.get("version") != VERSION:
            raise AvatarError(f"{path}: warp avatar version {d.get('version')}, this live reads {VERSION}; "
                              f"create it again")
        if d.get("digest") != content_digest({k: v for k, v in d.items() if k != "digest"}):
            raise AvatarError(f"{path}: the file was modified after it was written (its digest does not match); "
                              f"create the avatar again")
        photo, marks = d["photo"].numpy(), d["landmarks"].numpy().astype(np.float64)
        if photo.ndim != 3 or photo.shape[2] != 3 or marks.shape != (478, 3) or not np.isfinite(marks).all():
            raise AvatarError(f"{path}: photo or mesh of the wrong shape; create the avatar again")
        return cls(photo, marks, d["p_s"].numpy().astype(np.float64), d["created"], d["source_photo"],
                   int(d["faces_in_photo"]), tuple(d["param_names"]))


def load_warp_avatar(path: str | Path) -> WarpAvatar:
    d = read_avatar_file(path)
    if d["format"] != FORMAT:
        raise AvatarError(f"{path}: a StyleGAN2 avatar, not a warp one")
    return WarpAvatar.from_dict(d, Path(path))


def create_warp_avatar(photo_path: str | Path, face_index: int = 0) -> WarpAvatar:
    """The photo (downscaled), its face's mesh and parameters: a second's work."""
    import cv2

    from live.avatar.create import find_face
    from live.avatar.face_reader import TrackerFaceReader
    from live.io.sources import read_image_rgb
    from models.face.shape_model import FaceModel
    from models.face.tracker import MediaPipeTracker
    photo = read_image_rgb(photo_path)
    scale = MAX_SIDE / max(photo.shape[:2])
    if scale < 1:
        logger.info("{}: {}x{} px, downscaled to {} px on its longer side", photo_path, photo.shape[1],
                    photo.shape[0], MAX_SIDE)
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    rough, n_faces = find_face(photo, face_index, str(photo_path), TrackerFaceReader(max(face_index + 1, 4)))
    model = FaceModel.load()
    with MediaPipeTracker(max_faces=max(n_faces, 1), video=False, mirror_index=model.mirror) as tracker:
        obs = tracker.track(photo)          # flip-averaged: the most accurate mesh of the largest face
    marks = obs.landmarks.astype(np.float64) if obs.found and face_index == 0 else rough.astype(np.float64)
    _check_face(marks, photo.shape, str(photo_path))
    return WarpAvatar(photo=photo, landmarks=marks, p_s=model.fit(marks).params,
                      created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                      source_photo=str(photo_path), faces_in_photo=n_faces)


def _check_face(marks: np.ndarray, shape, source: str) -> None:
    h, w = shape[:2]
    x0, y0 = marks[:, :2].min(0)
    x1, y1 = marks[:, :2].max(0)
    if max(x1 - x0, y1 - y0) < MIN_FACE:
        raise AvatarError(f"{source}: the face is {max(x1 - x0, y1 - y0):.0f} px across, too small to animate "
                          f"(at least {MIN_FACE}); use a photo where the face is larger")
    margin = 0.02 * max(h, w)
    if x0 < -margin or y0 < -margin or x1 > w + margin or y1 > h + margin:
        raise AvatarError(f"{source}: the face is cut by the photo's edge; use a photo with the whole face in it")
