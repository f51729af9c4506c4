"""The StyleGAN2 objective (Karras et al. 2020): non-saturating logistic loss, lazy R1 on real
images, path-length regularisation of the generator. Each term is its own function so tests can
check them against the formulas."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def d_logistic(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(x)) - log(1 - sigmoid(D(G(z)))), mean over the batch."""
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def g_nonsaturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log sigmoid(D(G(z))): strong gradients while D still rejects the fakes."""
    return F.softplus(-fake_logits.float()).mean()


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """E ||grad_x D(x)||^2 on real images (real_images must require grad)."""
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().square().flatten(1).sum(1).mean()


def path_length_penalty(images: torch.Tensor, w_plus: torch.Tensor, mean_length: torch.Tensor,
                        decay: float = 0.01) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(|J_w^T y| - a)^2 with y random image-space noise, a the running mean of the length.

    Returns (penalty, new running mean, mean length this batch). The noise is scaled by
    1/sqrt(H W) so the length does not depend on the resolution."""
    h, w = images.shape[2:]
    noise = torch.randn_like(images) / math.sqrt(h * w)
    (grad,) = torch.autograd.grad((images * noise).sum(), w_plus, create_graph=True)
    lengths = grad.float().square().sum(2).mean(1).sqrt()
    new_mean = mean_length + decay * (lengths.mean().detach() - mean_length)
    return (lengths - new_mean).square().mean(), new_mean, lengths.mean().detach()
