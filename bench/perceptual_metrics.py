"""LPIPS, FID and FVD with their standard networks, fetched into the model cache.

The networks are the TorchScript ports the StyleGAN papers' code uses (registry entries
`lpips-vgg16`, `fid-inception`, `fvd-i3d`; `live models fetch NAME`). Without them a metric is
skipped, saying which command fetches it. FID and FVD are Frechet distances between Gaussian
fits of the real and the generated features; with tens of frames (or a handful of videos) they
are biased upward and only comparable between runs of the same size.
"""

from __future__ import annotations

import numpy as np

METRIC_NETS = {"lpips": "lpips-vgg16", "fid": "fid-inception", "fvd": "fvd-i3d"}


class MetricUnavailable(RuntimeError):
    """The metric's network is not in the model cache; the message says how to fetch it."""


def load_net(metric: str):
    import torch

    from live.model_store import ModelStore, ModelStoreError
    name = METRIC_NETS[metric]
    try:
        path = ModelStore().path(name)
    except ModelStoreError:
        raise MetricUnavailable(f"{metric.upper()} needs its network: live models fetch {name}") from None
    return torch.jit.load(str(path), map_location="cpu").eval()


def _nchw(images: list[np.ndarray]):
    import torch
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def lpips(net, a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """Per pair of uint8 images: the squared distance of the VGG16 LPIPS features (StyleGAN2-ADA's PPL)."""
    import torch
    with torch.no_grad():
        fa = net(_nchw(a).float(), resize_images=False, return_lpips=True)
        fb = net(_nchw(b).float(), resize_images=False, return_lpips=True)
    return (fa - fb).square().sum(1).numpy()


def frechet_distance(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to feature sets [N, D]."""
    import scipy.linalg
    mu_r, mu_f = real.mean(0), fake.mean(0)
    cov_r, cov_f = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root, _ = scipy.linalg.sqrtm(cov_r @ cov_f, disp=False)
    return float(np.square(mu_r - mu_f).sum() + np.trace(cov_r + cov_f - 2 * np.real(root)))


def fid(net, real: list[np.ndarray], fake: list[np.ndarray]) -> float:
    import torch
    with torch.no_grad():
        fr = net(_nchw(real), return_features=True).numpy().astype(np.float64)
        ff = net(_nchw(fake), return_features=True).numpy().astype(np.float64)
    return frechet_distance(fr, ff)


def fvd(net, real: list[np.ndarray], fake: list[np.ndarray]) -> float:
    """real, fake: videos [T, H, W, 3] uint8 (at least 2 of each)."""
    import torch

    def features(videos):
        x = torch.from_numpy(np.stack(videos)).permute(0, 4, 1, 2, 3).contiguous()   # [N, 3, T, H, W]
        with torch.no_grad():
            return net(x, rescale=True, resize=True, return_features=True).numpy().astype(np.float64)
    return frechet_distance(features(real), features(fake))


def perceptual_summary(outputs: list[np.ndarray], references: list[np.ndarray],
                       videos: tuple[list, list] | None = None) -> dict:
    """{'lpips': ..., 'fid': ..., 'fvd': ...} where the networks are present, else the reason."""
    out: dict = {}
    for metric in ("lpips", "fid", "fvd"):
        try:
            net = load_net(metric)
            if metric == "lpips":
                out[metric] = round(float(lpips(net, outputs, references).mean()), 4)
            elif metric == "fid":
                out[metric] = round(fid(net, references, outputs), 2)
            elif videos is None or len(videos[0]) < 2:
                out[metric] = "skipped: FVD needs at least two clips of consecutive frames"
            else:
                out[metric] = round(fvd(net, videos[0], videos[1]), 2)
        except MetricUnavailable as e:
            out[metric] = f"skipped: {e}"
    return out
