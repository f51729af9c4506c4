"""Samples for fitting directions: seeded codes, their images, and the face parameters tracked on them.

A sample set is a cache file (NPZ) keyed by the generator's weights hash, the truncation and
the face model; sampling resumes where a previous run stopped and writes progress every chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from live.postprocess import to_uint8_rgb
from live.tracking import MediaPipeTracker
from models.directions import file_sha256
from models.face_model import FaceModel
from models.stylegan2 import Generator

TRACK_SIZE = 256  # generator images are upscaled to this before tracking (the detector needs pixels)


@dataclass
class SampleSet:
    seeds: np.ndarray      # [N] int
    w: np.ndarray          # [N, S] mapped (and truncated) codes
    params: np.ndarray     # [N, 15], NaN where no face was found
    identity: np.ndarray   # [N, K_id], NaN where no face was found

    @property
    def found(self) -> np.ndarray:
        return np.isfinite(self.params).all(1)

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".partial.npz")
        np.savez(tmp, seeds=self.seeds, w=self.w, params=self.params, identity=self.identity)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "SampleSet":
        with np.load(path) as z:
            return cls(z["seeds"], z["w"], z["params"], z["identity"])


def codes_for_seeds(G: Generator, seeds, truncation: float) -> torch.Tensor:
    """One z per seed (NumPy RandomState, as in NVIDIA's generate scripts) -> w [N, S]."""
    z = np.stack([np.random.RandomState(int(s)).randn(G.style_dim) for s in seeds])
    with torch.no_grad():
        return G.mapping(torch.from_numpy(z).float().to(G.w_avg.device), truncation)


def images_to_uint8(images: torch.Tensor, size: int = TRACK_SIZE) -> np.ndarray:
    """[N, 3, R, R] in [-1, 1] -> [N, size, size, 3] uint8 RGB, bicubic upscaling."""
    x = images.float()
    if x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bicubic", align_corners=False)
    return to_uint8_rgb(x)


class ImageParams:
    """Face parameters of unrelated images (each tracked on its own, no video state)."""

    def __init__(self, model: FaceModel | None = None):
        self.model = model or FaceModel.load()
        self.tracker = MediaPipeTracker(max_faces=1, video=False)

    def __call__(self, images_uint8: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k_id = len(self.model.id_basis)
        params = np.full((len(images_uint8), 15), np.nan)
        identity = np.full((len(images_uint8), k_id), np.nan)
        for i, img in enumerate(images_uint8):
            obs = self.tracker.track(img)
            if obs.found:
                fit = self.model.fit(obs.landmarks)
                params[i], identity[i] = fit.params, fit.identity
        return params, identity

    def close(self) -> None:
        self.tracker.close()


def synthesize_batched(G: Generator, w_plus: torch.Tensor, batch: int = 16) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([G.synthesize(chunk, impl="static") for chunk in w_plus.split(batch)])


def sample_cache_path(cache_dir: Path, weights_sha256: str, truncation: float, model_path: Path) -> Path:
    model_hash = file_sha256(model_path)[:12]
    return cache_dir / f"samples-{weights_sha256[:16]}-psi{truncation:g}-fm{model_hash}.npz"


def collect_samples(G: Generator, n: int, truncation: float, cache: Path | None, batch: int = 16,
                    first_seed: int = 0, progress: bool = True) -> SampleSet:
    """Samples for seeds first_seed .. first_seed+n-1, reusing and extending the cache file."""
    seeds = np.arange(first_seed, first_seed + n)
    have = SampleSet.load(cache) if cache is not None and cache.is_file() else None
    if have is not None and len(have.seeds) >= n and np.array_equal(have.seeds[:n], seeds):
        return SampleSet(have.seeds[:n], have.w[:n], have.params[:n], have.identity[:n])
    done = 0
    w_all, p_all, id_all = [], [], []
    if have is not None and np.array_equal(have.seeds, seeds[: len(have.seeds)]):
        done = len(have.seeds)
        w_all, p_all, id_all = [have.w], [have.params], [have.identity]
        logger.info("resuming samples: {} of {} in {}", done, n, cache)
    tracker = ImageParams()
    from rich.progress import Progress
    try:
        with Progress(disable=not progress) as bar:
            task = bar.add_task("synthesising and tracking samples", total=n, completed=done)
            for start in range(done, n, batch * 4):
                chunk = seeds[start:start + batch * 4]
                w = codes_for_seeds(G, chunk, truncation)
                images = images_to_uint8(synthesize_batched(G, G.broadcast(w), batch))
                params, identity = tracker(images)
                w_all.append(w.cpu().numpy())
                p_all.append(params)
                id_all.append(identity)
                bar.advance(task, len(chunk))
                if cache is not None:
                    cache.parent.mkdir(parents=True, exist_ok=True)
                    SampleSet(seeds[: start + len(chunk)], np.concatenate(w_all), np.concatenate(p_all),
                              np.concatenate(id_all)).save(cache)
    finally:
        tracker.close()
    out = SampleSet(seeds, np.concatenate(w_all), np.concatenate(p_all), np.concatenate(id_all))
    logger.info("{} samples, a face found in {} ({:.0%})", n, int(out.found.sum()), out.found.mean())
    return out
