"""Inverting a face crop into W+: optimisation from the mean code, or from an e4e encoder's code.

Loss: mean squared error over the crop (what PSNR measures) plus a prior that keeps every
layer's code where the generator's W codes live: the squared Mahalanobis distance to the mean
W under the covariance of mapped samples, per dimension. Without it the optimiser finds codes
that reproduce the photo but edit badly (far from W, directions no longer apply).
With the crop's face (live/avatar/likeness.py), an identity term (dlib's descriptor of the
render against the photo's) and a perceptual term (early feature maps of the same network over
the head): MSE alone settles for the nearest soft average face, which can be another person.
Noise stays at the generator's constant buffers, as in the live loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from live.avatar.likeness import FaceTerms
from live.avatar.optimise import optimise
from models.image_metrics import psnr as image_psnr


@dataclass
class InversionConfig:
    steps: int = 400
    lr: float = 0.02
    prior_weight: float = 2e-4     # weight of the W prior (per-dimension Mahalanobis distance squared)
    lr_rampdown: float = 0.25      # cosine decay of the learning rate over the last quarter of the steps
    # The face terms, 0 = off (then the loop is the pixel-only one, bit for bit). Their scale against a crop's
    # reconstruction: MSE 0.005-0.04 (29-20 dB), 1 - cos of the descriptors 0.03-0.15, perceptual 0.5-1.5.
    # Defaults measured on five photos (bench/RESULTS.md, "Avatars"): see TuningConfig for tuning's.
    identity_weight: float = 0.1   # 1 - cos(dlib descriptor of the render, of the photo crop)
    perceptual_weight: float = 0.05  # LPIPS-like distance on the face network's early features, wider crop


@dataclass
class WPrior:
    mean: torch.Tensor       # [S]
    whiten: torch.Tensor     # [S, S]: (w - mean) @ whiten has identity covariance

    @classmethod
    def of(cls, G, n: int = 10_000, seed: int = 0) -> "WPrior":
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            z = torch.randn(n, G.style_dim, generator=g).to(G.w_avg.device)
            w = torch.cat([G.mapping(c) for c in z.split(2000)]).double()
        mean = w.mean(0)
        cov = torch.cov((w - mean).T) + 1e-6 * torch.eye(w.shape[1], dtype=w.dtype, device=w.device)
        whiten = torch.linalg.inv(torch.linalg.cholesky(cov)).T
        return cls(mean.float(), whiten.float())

    def distance2(self, w_plus: torch.Tensor) -> torch.Tensor:
        """Mean over layers and dimensions of the whitened squared distance (about 1 for samples)."""
        return (((w_plus - self.mean) @ self.whiten) ** 2).mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images in [-1, 1], each clamped to that range first (as the saved picture will be)."""
    return image_psnr(a.float().clamp(-1, 1), b.float().clamp(-1, 1), 2.0)


def invert(G, target: torch.Tensor, cfg: InversionConfig, prior: WPrior, init: torch.Tensor | None = None,
           progress: bool = True, face: FaceTerms | None = None) -> tuple[torch.Tensor, list[float]]:
    """W+ code [n_latent, S] reproducing `target` [1, 3, R, R] in [-1, 1]. Returns (code, pixel MSE per step).
    face: the crop's identity and perceptual terms (weighted by cfg); None: the pixel loss and the prior only."""
    if target.shape[-1] != G.resolution:
        raise ValueError(f"target is {target.shape[-1]} px, the generator draws {G.resolution} px")
    start = init if init is not None else G.w_avg.detach().expand(G.n_latent, -1)
    w = start.detach().clone().float().unsqueeze(0).requires_grad_(True)
    opt = torch.optim.Adam([w], lr=cfg.lr, betas=(0.9, 0.999))

    def step(i: int) -> tuple[float, float]:
        t = i / max(cfg.steps - 1, 1)
        ramp = min(1.0, (1 - t) / cfg.lr_rampdown) if cfg.lr_rampdown > 0 else 1.0
        for group in opt.param_groups:
            group["lr"] = cfg.lr * 0.5 * (1 - math.cos(ramp * math.pi))
        image = G.synthesize(w, impl="static")
        mse = F.mse_loss(image, target)
        loss = mse + cfg.prior_weight * prior.distance2(w)
        if face is not None:
            loss = loss + face(image, cfg.identity_weight, cfg.perceptual_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item(), mse.item()

    history = optimise(cfg.steps, step, "inverting", progress)
    return w.detach()[0], history
