"""Building the face shape model from tracked footage (`live face-model build` tracks the clips).

Reproducible: the same clips give the same arrays. Steps:
1. Track every frame of each clip (mediapipe face mesh, 478 3D landmarks in pixels).
2. Generalised Procrustes analysis: align all frames to a common mean by similarity transforms.
3. Put the mean in a symmetric frame: the plane through the midline points is x = 0, the
   chin-to-forehead line is vertical. Find each landmark's mirror partner (optimal assignment
   of the mirrored mean to itself) and add the mirror image of every frame to the data, so the
   model is exactly left-right symmetric.
4. Rigidity weights: landmarks that move little within a clip (after alignment) weigh most in
   the pose alignment; re-align with those weights.
5. Expression basis: within each clip, regress the mesh motion on the 12 standardised
   expression measurements (standardised by their spread over all frames) (models/face/landmarks.py); row k is the mesh motion per unit of k.
6. Identity basis: principal components of the per-clip mean shapes, orthogonal to the
   expression basis.
7. Parameter ranges: fit every frame and keep the 1st..99th percentile of each parameter.
"""

from __future__ import annotations

import numpy as np
from loguru import logger

from models.face.landmarks import (
    CHIN,
    EXPRESSION_NAMES,
    EYE_LEFT,
    EYE_RIGHT,
    FOREHEAD,
    MIDLINE,
    measure_expressions,
)
from models.face.shape_model import FaceModel, similarity_align


def _normalise(shape: np.ndarray, w: np.ndarray) -> np.ndarray:
    w = w / w.sum()
    c = shape - w @ shape
    return c / np.sqrt(w @ (c**2).sum(1))


def _align_all(frames: np.ndarray, ref: np.ndarray, w: np.ndarray) -> np.ndarray:
    out = np.empty_like(frames)
    for i, x in enumerate(frames):
        s, r, t = similarity_align(ref, x, w)
        out[i] = (x - t) @ r / s
    return out


def _procrustes(frames: np.ndarray, ref: np.ndarray, w: np.ndarray, iters: int = 4) -> tuple[np.ndarray, np.ndarray]:
    mean = _normalise(ref, w)
    for _ in range(iters):
        aligned = _align_all(frames, mean, w)
        new_mean = _normalise(aligned.mean(0), w)
        s, r, t = similarity_align(new_mean, mean, w)  # keep the mean's orientation fixed
        mean = _normalise(new_mean @ r.T * s + t, w)
    return mean, _align_all(frames, mean, w)


def _symmetric_frame(mean: np.ndarray) -> np.ndarray:
    """Rotation whose columns are the model axes: x normal to the midline plane (toward the
    subject's left eye, i.e. the image's right), y from forehead to chin, z = x cross y."""
    mid = mean[list(MIDLINE)]
    _, _, vt = np.linalg.svd(mid - mid.mean(0))
    x_axis = vt[2]
    if (mean[EYE_LEFT["outer"]] - mean[EYE_RIGHT["outer"]]) @ x_axis < 0:
        x_axis = -x_axis
    down = mean[CHIN] - mean[FOREHEAD]
    y_axis = down - (down @ x_axis) * x_axis
    y_axis /= np.linalg.norm(y_axis)
    return np.stack([x_axis, y_axis, np.cross(x_axis, y_axis)], axis=1)


def _mirror_permutation(mean: np.ndarray) -> np.ndarray:
    from scipy.optimize import linear_sum_assignment
    mirrored = mean * np.array([-1.0, 1.0, 1.0])
    cost = ((mean[:, None, :] - mirrored[None, :, :]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(mean), dtype=np.int64)
    perm[rows] = cols
    # landmark i of a mirrored face sits where landmark perm[i] of the original was
    return perm


def mirror_shapes(shapes: np.ndarray, perm: np.ndarray) -> np.ndarray:
    """The left-right mirror image of model-frame shapes [..., N, 3], landmarks re-indexed."""
    return (shapes * np.array([-1.0, 1.0, 1.0]))[..., perm, :]


def build_face_model(clips: dict[str, np.ndarray], n_identity: int = 6) -> FaceModel:
    """clips: name -> [F, 478, 3] tracked landmarks in pixels."""
    names = list(clips)
    frames = np.concatenate([clips[n] for n in names])
    clip_of = np.concatenate([np.full(len(clips[n]), i) for i, n in enumerate(names)])
    n_points = frames.shape[1]
    uniform = np.ones(n_points)
    logger.info("building the face model from {} frames of {} clips", len(frames), len(names))

    mean, _ = _procrustes(frames, frames[0], uniform)
    mean = mean @ _symmetric_frame(mean)
    perm = _mirror_permutation(mean)
    mean = _normalise(0.5 * (mean + mirror_shapes(mean, perm)), uniform)

    # Rigidity weights from within-clip motion, then weighted alignment; twice.
    weights = uniform
    for _ in range(2):
        aligned = _align_all(frames, mean, weights)
        aligned = np.concatenate([aligned, mirror_shapes(aligned, perm)])
        clips_all = np.concatenate([clip_of, clip_of + len(names)])
        clip_means = np.stack([aligned[clips_all == c].mean(0) for c in range(2 * len(names))])
        motion = ((aligned - clip_means[clips_all]) ** 2).sum(-1).mean(0)  # [N]
        weights = 1.0 / (motion + np.median(motion) * 0.25)
        weights = 0.5 * (weights + weights[perm])
        weights /= weights.mean()
        mean = _normalise(0.5 * (aligned.mean(0) + mirror_shapes(aligned.mean(0), perm)), weights)

    # Expression basis: within-clip regression of mesh motion on standardised measurements.
    measures = measure_expressions(aligned)                                     # [F2, 12]
    measure_scale = measures.std(0)
    m_within = (measures - np.stack([measures[clips_all == c].mean(0) for c in range(2 * len(names))])[clips_all])
    m_within /= measure_scale
    d_within = (aligned - clip_means[clips_all]).reshape(len(aligned), -1)
    gram = m_within.T @ m_within + 1e-6 * len(aligned) * np.eye(len(EXPRESSION_NAMES))
    exp_basis = np.linalg.solve(gram, m_within.T @ d_within)                   # [12, 3N]

    # Identity: per-clip mean shapes, minus what the expression basis explains.
    id_data = (clip_means - mean).reshape(len(clip_means), -1)
    q, _ = np.linalg.qr(exp_basis.T)
    id_data = id_data - (id_data @ q) @ q.T
    _, sv, vt = np.linalg.svd(id_data, full_matrices=False)
    k = min(n_identity, int((sv > sv[0] * 1e-3).sum()))
    id_basis, id_std = vt[:k], sv[:k] / np.sqrt(len(clip_means))

    model = FaceModel(mean=mean, id_basis=id_basis.reshape(k, n_points, 3), id_std=id_std,
                      exp_basis=exp_basis.reshape(len(EXPRESSION_NAMES), n_points, 3),
                      exp_scale=measure_scale, weights=weights,
                      mirror=perm, param_range=np.zeros((15, 2)),
                      meta={"clips": names, "frames": int(len(frames))})
    params = np.stack([model.fit(x).params for x in frames])
    model.param_range = np.percentile(params, [1, 99], axis=0).T
    logger.info("face model: {} landmarks, {} identity and {} expression components", n_points, k, len(EXPRESSION_NAMES))
    return model
