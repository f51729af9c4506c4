"""The avatar file (`me.pt`): everything `live run` needs to drive one face, and nothing executable.

A plain torch container of tensors, strings and numbers (loads with weights_only=True):
  format "live.avatar", version
  w_s [n_latent, S]              the inverted code (W+)
  p_s [15], param_names          the face parameters tracked on the reconstruction
  crop [R, R, 3] uint8           the photo cropped with the generator's framing
  crop_matrix [2, 3] float64     photo pixels -> crop pixels; photo_size (w, h); framing
  generator_sha256, generator_hint, directions_sha256
  tuned {name: fp16 delta}       pivotal tuning: the change of each tuned tensor (empty without)
  photo_thumb, reconstruction    uint8 images for `live avatar show`
  psnr_inversion, psnr_tuned     reconstruction quality over the crop (dB)
  identity_limits [P, 2]         how far each direction may move the face before it stops being this one
                                 (live/avatar/identity_limits.py; empty in files written before it existed)
  directions                     the direction matrix it was made with (that file's contents), so
                                 `live run --avatar me.pt` needs nothing else; -d overrides it
  created, source_photo
  digest                         sha256 over all of the above: a changed byte is detected
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from live.io.sources import image_kind
from models.errors import WeightsError
from models.face.landmarks import PARAM_NAMES
from models.atomic_files import save_torch_atomic
from models.weights_io import safe_torch_load

FORMAT = "live.avatar"
VERSION = 1


class AvatarError(WeightsError):
    """An avatar file that cannot be used; the message says why and what to do."""


@dataclass
class Avatar:
    w_s: torch.Tensor
    p_s: torch.Tensor
    crop: np.ndarray
    crop_matrix: np.ndarray
    photo_size: tuple[int, int]
    framing: str
    generator_sha256: str
    generator_hint: str = ""
    directions_sha256: str = ""
    tuned: dict[str, torch.Tensor] = field(default_factory=dict)
    photo_thumb: np.ndarray | None = None
    reconstruction: np.ndarray | None = None
    psnr_inversion: float = float("nan")
    psnr_tuned: float = float("nan")
    created: str = ""
    source_photo: str = ""
    param_names: tuple[str, ...] = PARAM_NAMES
    identity_limits: np.ndarray | None = None
    directions: dict | None = None       # the direction matrix it was made with (its file's contents), embedded
    generator: torch.nn.Module | None = field(default=None, repr=False)  # set by load(): tuned weights applied

    # -- writing ---------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {
            "format": FORMAT, "version": VERSION,
            "w_s": self.w_s.detach().float().cpu().contiguous(),
            "p_s": self.p_s.detach().float().cpu().contiguous(),
            "param_names": list(self.param_names),
            "crop": torch.from_numpy(np.ascontiguousarray(self.crop, dtype=np.uint8)),
            "crop_matrix": torch.from_numpy(np.asarray(self.crop_matrix, dtype=np.float64)),
            "photo_size": list(map(int, self.photo_size)), "framing": self.framing,
            "generator_sha256": self.generator_sha256, "generator_hint": self.generator_hint,
            "directions_sha256": self.directions_sha256,
            "tuned": {k: v.detach().half().cpu().contiguous() for k, v in self.tuned.items()},
            "photo_thumb": torch.from_numpy(np.ascontiguousarray(self.photo_thumb if self.photo_thumb is not None
                                                                 else np.zeros((1, 1, 3), np.uint8))),
            "reconstruction": torch.from_numpy(np.ascontiguousarray(self.reconstruction if self.reconstruction is not None
                                                                    else np.zeros((1, 1, 3), np.uint8))),
            "psnr_inversion": float(self.psnr_inversion), "psnr_tuned": float(self.psnr_tuned),
            "created": self.created, "source_photo": self.source_photo,
        }
        if self.identity_limits is not None:
            d["identity_limits"] = torch.from_numpy(np.asarray(self.identity_limits, np.float64))
        if self.directions is not None:
            d["directions"] = self.directions
        d["digest"] = content_digest(d)
        return d

    def save(self, path: str | Path) -> Path:
        return save_torch_atomic(self.to_dict(), path)

    # -- reading ---------------------------------------------------------------------------------
    @classmethod
    def read(cls, path: str | Path) -> "Avatar":
        """The file's contents, checked, without a generator (see `load`)."""
        path = Path(path)
        d = read_avatar_file(path)
        if d["format"] != FORMAT:
            raise AvatarError(f"{path}: a mesh-warp avatar, which needs no generator: live run --avatar {path}")
        if d.get("version") != VERSION:
            raise AvatarError(f"{path}: avatar format version {d.get('version')}, this live reads {VERSION}; "
                              f"create it again with this version")
        if d.get("digest") != content_digest({k: v for k, v in d.items() if k != "digest"}):
            raise AvatarError(f"{path}: the file was modified after it was written (its digest does not match); "
                              f"create the avatar again")
        w_s, p_s = d["w_s"], d["p_s"]
        if w_s.ndim != 2 or not torch.isfinite(w_s).all() or not torch.isfinite(p_s).all():
            raise AvatarError(f"{path}: w_s must be a finite [n_latent, S] code")
        return cls(w_s=w_s, p_s=p_s, crop=d["crop"].numpy(), crop_matrix=d["crop_matrix"].numpy(),
                   photo_size=tuple(d["photo_size"]), framing=d["framing"], generator_sha256=d["generator_sha256"],
                   generator_hint=d["generator_hint"], directions_sha256=d["directions_sha256"], tuned=d["tuned"],
                   photo_thumb=d["photo_thumb"].numpy(), reconstruction=d["reconstruction"].numpy(),
                   psnr_inversion=d["psnr_inversion"], psnr_tuned=d["psnr_tuned"], created=d["created"],
                   source_photo=d["source_photo"], param_names=tuple(d["param_names"]),
                   identity_limits=d["identity_limits"].numpy() if "identity_limits" in d else None,
                   directions=d.get("directions"))

    @classmethod
    def load(cls, path: str | Path, generator) -> "Avatar":
        """Read the avatar and bind it to `generator` (the one it was made with, untuned): the
        result's `.generator` is a copy with the tuned weights applied."""
        from models.checkpoint import weights_hash
        avatar = cls.read(path)
        g_hash = weights_hash(generator)
        if g_hash != avatar.generator_sha256:
            hint = f" ({avatar.generator_hint})" if avatar.generator_hint else ""
            raise AvatarError(f"{path}: made for generator {avatar.generator_sha256[:12]}{hint}, not for this one "
                              f"({g_hash[:12]}). Run with that generator (-g), or create the avatar again for this one.")
        if tuple(avatar.w_s.shape) != (generator.n_latent, generator.style_dim):
            raise AvatarError(f"{path}: w_s is {list(avatar.w_s.shape)}, the generator needs "
                              f"[{generator.n_latent}, {generator.style_dim}]")
        avatar.generator = apply_tuning(generator, avatar.tuned)
        return avatar


WARP_FORMAT = "live.avatar.warp"     # live/warp/warp_avatar.py


def read_avatar_file(path: str | Path) -> dict:
    """The container of either avatar kind, loaded safely (its `format` says which)."""
    path = Path(path)
    if not path.is_file():
        raise AvatarError(f"{path}: no such avatar file; make one with `live avatar create PHOTO -o {path.name}`")
    with open(path, "rb") as f:
        head = f.read(12)
    if image_kind(head) is not None:
        raise AvatarError(f"{path} is a photo, not an avatar: make one from it with "
                          f"`live avatar create {path} -o me.pt`, then --avatar me.pt")
    d = safe_torch_load(path, AvatarError, "a live avatar made by `live avatar create`")
    if not isinstance(d, dict) or d.get("format") not in (FORMAT, WARP_FORMAT):
        what = (f"format {d.get('format')!r}" if isinstance(d, dict) and "format" in d
                else "a torch file of something else" if isinstance(d, dict) else type(d).__name__)
        raise AvatarError(f"{path}: not a live avatar ({what}); make one with `live avatar create`")
    return d


def apply_tuning(generator, tuned: dict[str, torch.Tensor]):
    """A copy of `generator` with the stored fp16 deltas added (the original is left untouched)."""
    if not tuned:
        return generator
    G = copy.deepcopy(generator)
    params = dict(G.named_parameters())
    for name, delta in tuned.items():
        if name not in params or params[name].shape != delta.shape:
            raise AvatarError(f"tuned tensor {name} does not fit this generator")
        with torch.no_grad():
            params[name].add_(delta.to(params[name]))
    return G


def tuning_delta(original, tuned, min_change: float = 0.0) -> dict[str, torch.Tensor]:
    """fp16 deltas of the tensors pivotal tuning changed (what an avatar stores)."""
    orig = dict(original.named_parameters())
    out = {}
    for name, p in tuned.named_parameters():
        delta = (p.detach() - orig[name].detach()).cpu()
        if delta.abs().max() > min_change:
            out[name] = delta.half()
    return out


def content_digest(d: dict) -> str:
    h = hashlib.sha256()

    def feed(key: str, v) -> None:
        h.update(key.encode())
        if isinstance(v, torch.Tensor):
            h.update(str(v.dtype).encode())
            h.update(str(tuple(v.shape)).encode())
            h.update(v.contiguous().view(torch.uint8).numpy().tobytes() if v.numel() else b"")
        elif isinstance(v, dict):
            for k in sorted(v):
                feed(f"{key}/{k}", v[k])
        else:
            h.update(repr(v).encode())

    for k in sorted(d):
        feed(k, d[k])
    return h.hexdigest()
