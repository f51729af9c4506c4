"""Fitting A for a generator.

1. Closed form (closed_form_fit): a regression between W codes and normalised parameters,
   the regularisation chosen on held-out samples. The shift is the same for each of the
   first `layers` W+ codes, as the samples are W codes broadcast to W+.
2. Re-synthesis calibration, repeated: on calibration seeds, shift each parameter by +-delta,
   synthesise, track, and measure the achieved change of every parameter: the response
   matrix R (achieved = R requested). A regression of W on p under-shoots (the parameters
   explain only part of each code, so the fitted directions are shrunk), and R measures by
   how much; A <- A R^-1 corrects it, with R's singular values floored so the gain stays
   bounded where the generator barely responds (this fixture's yaw): codes are not pushed
   off the manifold.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from live.directions.sampling import (
    SampleSet,
    codes_for_seeds,
    collect_samples,
    sample_cache_path,
    sample_embeddings,
    synthesize_batched,
)
from live.options import option
from models.checkpoint import weights_hash
from models.direction_matrix import Directions
from models.face.landmarks import PARAM_NAMES
from models.face.params import ImageParams
from models.face.shape_model import default_model_path
from models.images import images_to_uint8
from models.stylegan2 import Generator
from models.weights_io import file_sha256

LAMBDAS = np.logspace(-4, 2, 13)


def parameter_ranges(params: np.ndarray) -> np.ndarray:
    """[N, 15] -> [15, 2]: 1st..99th percentile, the range mapped to [-6, 6]."""
    lo, hi = np.percentile(params, [1, 99], axis=0)
    return np.stack([lo, np.maximum(hi, lo + 1e-6)], axis=1)


def _normalise(p: np.ndarray, prange: np.ndarray, shift_scale: float) -> np.ndarray:
    return (p - prange[:, 0]) / (prange[:, 1] - prange[:, 0]) * 2 * shift_scale - shift_scale


def closed_form_fit(samples: SampleSet, layers: int = 8, method: str = "p_on_w", epsilon: float = 0.1,
                    val_frac: float = 0.2, shift_scale: float = 6.0, seed: int = 0,
                    embeddings: np.ndarray | None = None, identity_weight: float = 0.0) -> tuple[Directions, dict]:
    """A from samples, in closed form.

    method "w_on_p": ridge regression of W on the normalised parameters (the plain start; on
      the fixture its edits reach only ~0.1 of the requested change: p explains ~6% of W, and
      the joint regression shrinks every direction).
    method "p_on_w" (default): ridge regression of p on W (B), then for each parameter the W
      change that achieves it with the least Mahalanobis length under the W distribution:
      A = S B^T (B S B^T + epsilon I)^-1, S the covariance of W. Slope 1 under the linear
      model while staying where W codes are likely; epsilon bounds the move for parameters
      that W barely predicts.
    Identity (p_on_w, identity_weight > 0, with the samples' face-identity embeddings): the length is
      measured with the identity's own change added, |a|^2_{S^-1} + lambda |E a|^2, E the ridge
      regression of the embedding on W; directions then avoid what changes who the face is:
      A = K B^T (B K B^T + epsilon I)^-1, K = (S^-1 + lambda E^T E)^-1. lambda is identity_weight
      relative to the embedding variance W explains (dimensionless; 0 = off).
    The ridge strength is chosen on held-out samples (prediction error of the regressed side).
    """
    found = samples.found
    w, p = samples.w[found].astype(np.float64), samples.params[found].astype(np.float64)
    if len(w) < 10:
        raise ValueError(f"only {len(w)} samples with a face: sample more (--samples)")
    prange = parameter_ranges(p)
    pn = _normalise(p, prange, shift_scale)
    order = np.random.default_rng(seed).permutation(len(w))
    n_val = max(int(len(w) * val_frac), 1)
    val, train = order[:n_val], order[n_val:]
    wc, pc = w - w[train].mean(0), pn - pn[train].mean(0)
    x, y = (pc, wc) if method == "w_on_p" else (wc, pc)  # regress y on x

    def solve(idx, lam):
        xi = x[idx] - x[idx].mean(0)
        yi = y[idx] - y[idx].mean(0)
        return np.linalg.solve(xi.T @ xi + lam * len(idx) * np.eye(x.shape[1]), xi.T @ yi)

    errors = [((y[val] - x[val] @ solve(train, lam)) ** 2).sum() for lam in LAMBDAS]
    lam = float(LAMBDAS[int(np.argmin(errors))])
    r2 = 1.0 - min(errors) / ((y[val] - y[val].mean(0)) ** 2).sum()
    coef = solve(np.arange(len(w)), lam)
    if method == "w_on_p":
        a = coef.T                                                    # [S, P]
    elif method == "p_on_w":
        b = coef.T                                                    # [P, S]
        cov = wc.T @ wc / len(wc)
        metric = cov if identity_weight <= 0 else identity_metric(cov, wc, embeddings[found], identity_weight)
        a = metric @ b.T @ np.linalg.inv(b @ metric @ b.T + epsilon * np.eye(len(b)))
    else:
        raise ValueError(f"method must be w_on_p or p_on_w, got {method!r}")
    weight = torch.from_numpy(np.tile(a, (layers, 1))).float()       # [layers*S, P]
    info = {"method": method, "ridge_lambda": lam, "held_out_r2": round(float(r2), 4), "epsilon": epsilon,
            "samples": int(len(samples.seeds)), "with_face": int(found.sum())}
    logger.info("closed-form fit ({}): {} samples with a face, ridge {:.3g}, held-out R^2 {:.3f}",
                method, len(w), lam, r2)
    directions = Directions(weight=weight, bias=torch.zeros(weight.shape[0]), param_range=torch.from_numpy(prange).float(),
                            num_layers_shift=layers, shift_dim=w.shape[1], shift_scale=shift_scale, fit_info=info)
    return directions, info


def identity_metric(cov: np.ndarray, wc: np.ndarray, embeddings: np.ndarray, weight: float) -> np.ndarray:
    """K = (S^-1 + lambda E^T E)^-1 by Woodbury, E the ridge regression of the (centred) embeddings on W."""
    ok = np.isfinite(embeddings).all(1)
    if ok.sum() < 10:
        raise ValueError("fewer than 10 samples with a face-identity embedding: the identity term cannot be fitted")
    x, e = wc[ok], embeddings[ok] - embeddings[ok].mean(0)
    E = np.linalg.solve(x.T @ x + 1e-2 * len(x) * np.eye(x.shape[1]), x.T @ e).T          # [D, S]
    explained = E @ cov @ E.T
    scale = np.trace(explained) / len(E)
    return cov - cov @ E.T @ np.linalg.solve(np.eye(len(E)) * scale / weight + explained, E @ cov)


def edited_params(G: Generator, directions: Directions, w: torch.Tensor, delta_norm: torch.Tensor,
                  tracker: ImageParams, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Track G(w + A delta) for codes w [N, S] and normalised changes delta [N, P]."""
    w_plus = directions.apply(G.broadcast(w), directions.shift(delta_norm))
    return tracker(images_to_uint8(synthesize_batched(G, w_plus, batch)))


def response_matrix(G: Generator, directions: Directions, seeds, truncation: float, tracker: ImageParams,
                    delta: float = 3.0, batch: int = 16) -> np.ndarray:
    """R[i, k]: achieved change of parameter i (normalised units) per requested unit of k."""
    w = codes_for_seeds(G, seeds, truncation)
    p_count = directions.n_params
    span = (directions.param_range[:, 1] - directions.param_range[:, 0]).numpy()
    to_norm = 2 * directions.shift_scale / span
    r = np.zeros((p_count, p_count))
    for k in range(p_count):
        req = torch.zeros(len(seeds), p_count)
        req[:, k] = delta
        plus, _ = edited_params(G, directions, w, req, tracker, batch)
        minus, _ = edited_params(G, directions, w, -req, tracker, batch)
        ok = np.isfinite(plus).all(1) & np.isfinite(minus).all(1)
        if ok.sum() == 0:
            continue
        r[:, k] = np.median((plus[ok] - minus[ok]) * to_norm, axis=0) / (2 * delta)
    return r


def calibrate_directions(G: Generator, directions: Directions, seeds, truncation: float, rounds: int = 2,
                         max_gain: float = 4.0, delta: float = 3.0, mode: str = "diagonal") -> list[dict]:
    """Correct A so achieved changes match requested ones (see module doc). Modifies `directions`.

    mode "diagonal" (default) rescales each parameter's direction by 1 / its own response;
    mode "full" applies the inverse of the whole response matrix, which also cancels cross-talk
    but, measured on a few seeds, is noisy enough to make held-out editing worse on the fixture
    (bench/RESULTS.md)."""
    tracker = ImageParams()
    history = []
    try:
        for r in range(rounds):
            resp = response_matrix(G, directions, seeds, truncation, tracker, delta)
            diag = np.diag(resp).copy()
            if mode == "full":
                # Inverse of R with its singular values floored at 1/max_gain: exact where the
                # generator responds, at most max_gain times the current shift where it does not.
                u, sv, vt = np.linalg.svd(resp)
                correction = vt.T @ np.diag(1.0 / np.maximum(sv, 1.0 / max_gain)) @ u.T
            elif mode == "diagonal":
                correction = np.diag(1.0 / np.clip(diag, 1.0 / max_gain, None))
            else:
                raise ValueError(f"calibration mode must be diagonal or full, got {mode!r}")
            a = directions.weight.numpy().astype(np.float64) @ correction
            directions.weight = torch.from_numpy(a).float()
            history.append({"round": r, "diagonal_response": dict(zip(PARAM_NAMES, np.round(diag, 3).tolist()))})
            logger.info("calibration round {}: response pitch {:.2f}, jaw {:.2f}, yaw {:.2f}", r, diag[1], diag[3], diag[0])
    finally:
        tracker.close()
    return history


@dataclass
class FitOptions:
    quality: str = option("auto", "fast: 600 samples, minutes on a CPU; high: 2000 (the measured default, about 6 "
                          "min on 2 CPU cores); auto: high on a GPU, fast on the CPU", choices=("auto", "fast", "high"))
    samples: int | None = option(None, "codes to sample, synthesise and track; none: from --quality")
    truncation: float = option(0.7, "truncation psi of the samples")
    layers: int = option(8, "W+ layers shifted (8, as in the paper)")
    method: str = option("p_on_w", "closed form: p_on_w regresses p on W, then takes the least-Mahalanobis W "
                         "change per parameter (slope 1 under the linear model); w_on_p regresses W on p "
                         "(shrunk edits); see live/directions/fit.py", choices=("p_on_w", "w_on_p"))
    calibration_rounds: int = option(0, "re-synthesis calibration rounds (0: none)")
    calibration_seeds: int = option(24, "seeds per calibration round")
    identity_weight: float = option(0.0, "prefer directions that keep the face's identity (dlib embeddings of the "
                                    "samples; 0: off, 1-100: stronger); trades editing slope for identity")
    calibration_mode: str = option("diagonal", "diagonal rescales each direction by its measured response; full "
                                   "inverts the whole response matrix", choices=("diagonal", "full"))


def fit_for_generator(G: Generator, opts: FitOptions, cache_folder: Path) -> Directions:
    """Sample (cached in `cache_folder`, resumed), fit in closed form, optionally calibrate; the
    result carries the generator's and the face model's hashes and how it was fitted."""
    start = time.perf_counter()
    if opts.layers > G.n_latent:
        raise ValueError(f"--layers {opts.layers}: this generator has only {G.n_latent} W+ codes")
    g_hash = weights_hash(G)
    cache = sample_cache_path(cache_folder, g_hash, opts.truncation, default_model_path())
    quality = opts.quality if opts.quality != "auto" else ("high" if G.w_avg.device.type == "cuda" else "fast")
    n = opts.samples or {"fast": 600, "high": 2000}[quality]
    logger.info("sampling {} codes ({} quality{})", n, quality, "; --quality high for 2000" if quality == "fast" else "")
    samples = collect_samples(G, n, opts.truncation, cache)
    embeddings = sample_embeddings(G, samples, cache) if opts.identity_weight > 0 else None
    directions, info = closed_form_fit(samples, layers=opts.layers, method=opts.method, embeddings=embeddings,
                                       identity_weight=opts.identity_weight)
    info["identity_weight"] = opts.identity_weight
    if opts.calibration_rounds:
        seeds = range(10**6, 10**6 + opts.calibration_seeds)  # disjoint from the fitting seeds
        info["calibration"] = calibrate_directions(G, directions, seeds, opts.truncation, opts.calibration_rounds,
                                                   mode=opts.calibration_mode)
        info["calibration_mode"] = opts.calibration_mode
    directions.generator_sha256 = g_hash
    directions.face_model_sha256 = file_sha256(default_model_path())
    info["truncation"] = opts.truncation
    info["seconds"] = round(time.perf_counter() - start, 1)
    directions.fit_info = info
    return directions
