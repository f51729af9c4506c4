"""The warp avatar file: the photo, the tracker's 3D mesh of it, its parameters. Nothing executable. (Made by
live/warp/create_avatar.py.)

A plain torch container (weights_only), like the StyleGAN2 avatar's:
  format "live.avatar.warp", version
  photo [H, W, 3] uint8        the photo, at most MAX_SIDE px on its longer side
  landmarks [478, 3] float32   the face's mesh in the photo's pixels (flip-averaged tracking)
  p_s [15], param_names        its face parameters
  created, source_photo, faces_in_photo
  gaze_seen_across [9] float32 how far aside its irises are seen to look for each drawn move (live/warp/
                               gaze_response.py); absent in files made before it: irises drawn as the driver's read
  digest                       sha256 over all of the above: a changed byte is detected
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from live.avatar.avatar_file import WARP_FORMAT as FORMAT
from live.avatar.avatar_file import AvatarError, content_digest, read_avatar_file
from models.face.landmarks import PARAM_NAMES
from models.atomic_files import save_torch_atomic

VERSION = 1


@dataclass
class WarpAvatar:
    photo: np.ndarray
    landmarks: np.ndarray
    p_s: np.ndarray
    created: str = ""
    source_photo: str = ""
    faces_in_photo: int = 1
    param_names: tuple[str, ...] = PARAM_NAMES
    gaze_seen_across: np.ndarray | None = None

    def to_dict(self) -> dict:
        d = {"format": FORMAT, "version": VERSION,
             "photo": torch.from_numpy(np.ascontiguousarray(self.photo, np.uint8)),
             "landmarks": torch.from_numpy(np.asarray(self.landmarks, np.float32)),
             "p_s": torch.from_numpy(np.asarray(self.p_s, np.float32)), "param_names": list(self.param_names),
             "created": self.created, "source_photo": self.source_photo, "faces_in_photo": int(self.faces_in_photo)}
        if self.gaze_seen_across is not None:
            d["gaze_seen_across"] = torch.from_numpy(np.asarray(self.gaze_seen_across, np.float32))
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
        seen = d.get("gaze_seen_across")
        if seen is not None:
            from live.warp.gaze_response import DRAWN_ACROSS
            seen = seen.numpy().astype(np.float64) if isinstance(seen, torch.Tensor) else None
            if seen is None or seen.shape != DRAWN_ACROSS.shape or not np.isfinite(seen).all():
                raise AvatarError(f"{path}: its gaze table is not {len(DRAWN_ACROSS)} numbers; create the avatar again")
        return cls(photo, marks, d["p_s"].numpy().astype(np.float64), d["created"], d["source_photo"],
                   int(d["faces_in_photo"]), tuple(d["param_names"]), seen)


def load_warp_avatar(path: str | Path) -> WarpAvatar:
    d = read_avatar_file(path)
    if d["format"] != FORMAT:
        raise AvatarError(f"{path}: a StyleGAN2 avatar, not a warp one")
    return WarpAvatar.from_dict(d, Path(path))
