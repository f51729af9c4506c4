"""Pivotal tuning (Roich et al. 2021): fine-tune the generator around the inverted code.

The pivot w_p stays fixed; the synthesis weights move so G(w_p) matches the photo. A locality
regulariser keeps the rest of the latent space as it was: codes on the way from w_p toward
random samples (30% to 100% of the way, the samples truncated like the faces users drive)
must render as the untouched generator renders them. Only the synthesis network is tuned (the mapping, and so W itself
and the directions fitted in it, stay the same).
The paper's PTI pulls G(w_p) to the photo with L2 and LPIPS; here MSE, plus with the crop's face
(live/avatar/likeness.py) an identity term and an LPIPS-like perceptual term on the pivot's render
only (the locality codes are other faces: they keep to the untouched generator by pixels).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from live.avatar.likeness import FaceTerms
from live.avatar.optimise import optimise


@dataclass
class TuningConfig:
    steps: int = 300
    lr: float = 3e-4
    locality_weight: float = 4.0    # strong: a photo pulls hard, the rest of the space must not follow
    locality_alpha: tuple[float, float] = (0.3, 1.0)  # how far toward a random code, drawn uniformly
    locality_truncation: float = 0.7  # the random codes: where the faces users drive live
    locality_every: int = 1
    locality_batch: int = 4          # 4 not 2: the worst of 20 check codes 30.5 dB instead of 24 (bench/RESULTS.md)
    # The face terms on the pivot's render, 0 = off (the pixel-only loop, bit for bit); scales as in
    # InversionConfig. Defaults measured on five photos (bench/RESULTS.md, "Avatars").
    identity_weight: float = 0.1     # 1 - cos(dlib descriptor of G(w_p), of the photo crop)
    perceptual_weight: float = 0.05  # LPIPS-like distance on the face network's early features, wider crop


def pivotal_tuning(G, pivot: torch.Tensor, target: torch.Tensor, cfg: TuningConfig, seed: int = 0,
                   progress: bool = True, face: FaceTerms | None = None) -> tuple[torch.nn.Module, list[float]]:
    """A tuned copy of G (the input is not changed) and the pixel loss per step. face: the crop's
    identity and perceptual terms (weighted by cfg); None: pixels and locality only."""
    tuned = copy.deepcopy(G).train()
    tuned.requires_grad_(False)
    params = [p for p in tuned.synthesis.parameters()]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    w_p = pivot.detach().unsqueeze(0)
    g = torch.Generator().manual_seed(seed)

    def step(i: int) -> tuple[float, float]:
        image = tuned.synthesize(w_p, impl="static")
        mse = F.mse_loss(image, target)
        loss = mse
        if face is not None:
            loss = loss + face(image, cfg.identity_weight, cfg.perceptual_weight)
        if cfg.locality_weight > 0 and i % cfg.locality_every == 0:
            with torch.no_grad():
                z = torch.randn(cfg.locality_batch, G.style_dim, generator=g).to(w_p.device)
                w_r = G.broadcast(G.mapping(z, cfg.locality_truncation))
                lo, hi = cfg.locality_alpha
                alpha = lo + (hi - lo) * torch.rand(cfg.locality_batch, 1, 1, generator=g).to(w_p.device)
                w_loc = w_p + alpha * (w_r - w_p)
                reference = G.synthesize(w_loc, impl="static")
            loss = loss + cfg.locality_weight * F.mse_loss(tuned.synthesize(w_loc, impl="static"), reference)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item(), mse.item()

    history = optimise(cfg.steps, step, "tuning", progress)
    tuned.eval().requires_grad_(False)
    return tuned, history
