"""Adopting a direction matrix of other face parameters (the paper's, trained in DECA's space) for
live's tracker: `live directions adopt -g G -d A_paper.pt -o A.pt`.

The paper's A maps a change dq of its 15 DECA parameters (each scaled to [-6, 6]) to a W+ shift,
and was trained with identity and perceptual losses so that it keeps the face. Our tracker
measures other parameters p. On sampled codes w and sampled changes dq we render G(w + A_paper dq),
track both renders, and fit the linear map between them, dp = M dq (dp in our normalised units;
its R^2 per parameter says how well each of ours is reached). Then A = A_paper M+ turns our dp
into the paper's dq and through its trained directions: dp -> M+ dp -> A_paper M+ dp. M+ is the
pseudo-inverse with small singular values floored, so parameters the paper's A barely moves do not
get unbounded gains.

`measure` is what turns W+ codes into our parameters: rendering and tracking (`tracked_params`),
or any other exact readout (the tests use a linear one, whose answer is known).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from loguru import logger

from live.options import option
from models.direction_matrix import Directions
from models.face.landmarks import PARAM_NAMES
from models.face.shape_model import FaceModel


@dataclass
class AdoptOptions:
    samples: int = option(512, "codes rendered with a random change of the other matrix's parameters")
    change: float = option(2.0, "standard deviation of the sampled changes, in that matrix's normalised units "
                           "([-6, 6] for the paper's)")
    truncation: float = option(0.7, "truncation psi of the sampled codes")
    max_gain: float = option(4.0, "largest gain of the pseudo-inverse (singular values floored at 1/this)")
    seed: int = option(0, "random seed of codes and changes")


def tracked_params(G, batch: int = 16) -> Callable[[torch.Tensor], np.ndarray]:
    """W+ [N, L, S] -> our raw parameters [N, 15] (NaN where no face), by rendering and tracking."""
    from live.directions.sampling import synthesize_batched
    from models.face.params import ImageParams
    from models.images import images_to_uint8
    tracker = ImageParams()

    def measure(w_plus: torch.Tensor) -> np.ndarray:
        return tracker(images_to_uint8(synthesize_batched(G, w_plus, batch)))[0]
    measure.close = tracker.close
    return measure


def our_ranges() -> np.ndarray:
    """[15, 2]: the shipped face model's 1st..99th percentiles of real footage: our normalised units."""
    return FaceModel.load().param_range


def adopt(G, other: Directions, measure: Callable[[torch.Tensor], np.ndarray], opts: AdoptOptions,
          param_range: np.ndarray | None = None) -> tuple[Directions, dict]:
    """A in live's parameters from `other` (see the module doc); (directions, fit info)."""
    from live.directions.sampling import codes_for_seeds
    prange = our_ranges() if param_range is None else np.asarray(param_range, np.float64)
    shift_scale = other.shift_scale
    to_norm = 2 * shift_scale / (prange[:, 1] - prange[:, 0])
    rng = np.random.default_rng(opts.seed)
    w = codes_for_seeds(G, range(opts.seed * 10**6, opts.seed * 10**6 + opts.samples), opts.truncation)
    dq = rng.normal(0, opts.change, (opts.samples, other.n_params))
    w_plus = G.broadcast(w)
    base = measure(w_plus)
    edited = measure(other.apply(w_plus, other.shift(torch.from_numpy(dq).float())))
    ok = np.isfinite(base).all(1) & np.isfinite(edited).all(1)
    if ok.sum() < max(2 * other.n_params, 16):
        raise ValueError(f"a face was tracked in only {int(ok.sum())} of {opts.samples} sample pairs: this generator "
                         f"does not draw faces the tracker finds, so the matrix cannot be adopted for it")
    dp = (edited[ok] - base[ok]) * to_norm                       # our normalised changes [N, P]
    x = np.concatenate([dq[ok], np.ones((int(ok.sum()), 1))], 1)  # the intercept takes the other's bias
    coef, *_ = np.linalg.lstsq(x, dp, rcond=None)                # dp ~ x @ coef  ->  M = coef[:-1].T  [P, Q]
    M = coef[:-1].T
    resid = dp - x @ coef
    r2 = 1 - resid.var(0) / np.maximum(dp.var(0), 1e-12)
    u, sv, vt = np.linalg.svd(M, full_matrices=False)
    m_pinv = vt.T @ np.diag(1.0 / np.maximum(sv, sv.max() / opts.max_gain)) @ u.T   # [Q, P]
    weight = other.weight.double().numpy() @ m_pinv              # [LS, P]
    info = {"method": "adopted", "from_parameters": list(other.param_names), "samples": int(opts.samples),
            "pairs_with_faces": int(ok.sum()), "change_sd": opts.change,
            "fit_r2": {n: round(float(v), 3) for n, v in zip(PARAM_NAMES, r2)},
            "singular_values": [round(float(v), 4) for v in sv], "max_gain": opts.max_gain}
    logger.info("adopted: {} pairs with faces; R^2 of our parameters from the other matrix's: {}", int(ok.sum()),
                ", ".join(f"{n} {v:.2f}" for n, v in list(info["fit_r2"].items())[:4]))
    directions = Directions(weight=torch.from_numpy(weight).float(), bias=other.bias.clone(),
                            param_range=torch.from_numpy(prange).float(), num_layers_shift=other.num_layers_shift,
                            shift_dim=other.shift_dim, shift_scale=shift_scale, fit_info=info)
    return directions, info
