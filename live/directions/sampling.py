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

from models.atomic_files import save_npz_atomic
from models.face.params import ImageParams
from models.images import images_to_uint8
from models.stylegan2 import Generator
from models.weights_io import file_sha256


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
        save_npz_atomic(path, compressed=False, seeds=self.seeds, w=self.w, params=self.params, identity=self.identity)

    @classmethod
    def load(cls, path: Path) -> "SampleSet":
        with np.load(path) as z:
            return cls(z["seeds"], z["w"], z["params"], z["identity"])


def codes_for_seeds(G: Generator, seeds, truncation: float) -> torch.Tensor:
    """One z per seed (NumPy RandomState, as in NVIDIA's generate scripts) -> w [N, S]."""
    z = np.stack([np.random.RandomState(int(s)).randn(G.style_dim) for s in seeds])
    with torch.no_grad():
        return G.mapping(torch.from_numpy(z).float().to(G.w_avg.device), truncation)


def synthesize_batched(G: Generator, w_plus: torch.Tensor, batch: int = 16) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([G.synthesize(chunk, impl="static") for chunk in w_plus.split(batch)])


def sample_cache_path(cache_dir: Path, weights_sha256: str, truncation: float, model_path: Path) -> Path:
    model_hash = file_sha256(model_path)[:12]
    return cache_dir / f"samples-{weights_sha256[:16]}-psi{truncation:g}-fm{model_hash}.npz"


def sample_embeddings(G: Generator, samples: SampleSet, cache: Path | None, batch: int = 16,
                      progress: bool = True) -> np.ndarray:
    """Face-identity embeddings [N, D] of the samples' renders (NaN rows where no face), cached beside the
    samples (`*.identity.npz`) and resumed like them."""
    from rich.progress import Progress

    from models.identity.embedding import default_identity
    path = cache.with_suffix(".identity.npz") if cache is not None else None
    done = np.load(path)["embedding"] if path is not None and path.is_file() else np.zeros((0, 128))
    done = done[: len(samples.seeds)]
    parts = [done]
    identity = default_identity()
    with Progress(disable=not progress) as bar:
        task = bar.add_task("face-identity embeddings of the samples", total=len(samples.seeds), completed=len(done))
        for start in range(len(done), len(samples.seeds), batch * 4):
            w = torch.from_numpy(samples.w[start:start + batch * 4]).to(G.w_avg.device)
            images = images_to_uint8(synthesize_batched(G, G.broadcast(w), batch))
            parts.append(identity.embed(list(images)))
            bar.advance(task, len(w))
            if path is not None:
                save_npz_atomic(path, compressed=False, embedding=np.concatenate(parts))
    return np.concatenate(parts)


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
