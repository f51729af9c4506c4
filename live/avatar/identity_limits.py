"""How far each direction can move an avatar before it stops being the avatar.

At avatar creation each parameter's direction is swept from the avatar's own code, both ways, in
steps of the normalised range; each render is embedded (face identity, models/identity/embedding.py)
and compared with the avatar's unedited render. A direction's limit is the last step before the
distance reaches the threshold (0.5 by default, under dlib's same-person 0.6: the photo itself may
already be far from a small generator's reconstruction, so the avatar's own render is the reference).
At run time the guard eases the driver's change into these limits (`soft_limit`), instead of
letting a strong expression push the face into another person.
"""

from __future__ import annotations

import numpy as np
import torch
from loguru import logger

STEP, MAX_NORM = 1.0, 4.0   # in normalised units ([-6, 6] over the 1st..99th percentile of a parameter):
# driving rarely asks for more than 4, and the soft limit makes a limit of 4 ease in from about 2


def identity_limits(G, w_s: torch.Tensor, directions, threshold: float = 0.5, identity=None,
                    step: float = STEP, reach: float = MAX_NORM, batch: int = 16,
                    face_points: np.ndarray | None = None) -> np.ndarray | None:
    """[P, 2] (lowest <= 0 <= highest) normalised change each parameter may take; None without a face.

    All 2P directions are stepped out together, one step per round (each round one batch of renders),
    and a direction stops at its first step that is not the avatar; the face is located once, on the
    avatar's own render, and that box used for every step (the sweep moves it little). With
    `face_points` (dlib's 5 points in the render's pixels, e.g. from the crop's face mesh) and an identity
    network that takes points (models/identity/torch_identity.py), no face detector is needed at all."""
    from live.directions.sampling import synthesize_batched
    from models.identity.embedding import default_identity, distance
    from models.images import images_to_uint8
    identity = identity or default_identity()
    P = directions.n_params
    device = G.w_avg.device
    if w_s.device != device or directions.device != device:
        raise ValueError(f"identity_limits: the generator is on {device}, w_s on {w_s.device} and the directions on "
                         f"{directions.device}; put them on one device first (the scene does: live/pipeline/scene.py)")

    def render(deltas: torch.Tensor) -> np.ndarray:
        deltas = deltas.to(device)
        w_plus = directions.apply(w_s[None].expand(len(deltas), -1, -1), directions.shift(deltas))
        return images_to_uint8(synthesize_batched(G, w_plus, batch))

    reference = render(torch.zeros(1, P))[0]
    if face_points is not None and hasattr(identity, "embed_points"):
        def embed(images: list[np.ndarray]) -> np.ndarray:
            return identity.embed_points(images, [face_points] * len(images))
    else:
        box = _locate(identity, reference)

        def embed(images: list[np.ndarray]) -> np.ndarray:
            return identity.embed(images, [box] * len(images))
    ref = embed([reference])[0]
    if not np.isfinite(ref).all():
        logger.warning("no face found in the avatar's own render: identity limits not computed")
        return None
    sides = [(k, sign) for k in range(P) for sign in (-1.0, 1.0)]
    limits = np.zeros((P, 2))

    def keeps_identity(requests: list[tuple[int, float]]) -> np.ndarray:
        deltas = torch.zeros(len(requests), P)
        for row, (k, value) in enumerate(requests):
            deltas[row, k] = value
        far = distance(embed(list(render(deltas))), ref)
        return np.isfinite(far) & (far < threshold)          # no face counts as not the avatar

    open_sides, crossed = list(range(len(sides))), []
    for v in np.arange(step, reach + 1e-9, step):
        ok = keeps_identity([(sides[i][0], sides[i][1] * v) for i in open_sides])
        for i, good in zip(open_sides, ok):
            k, sign = sides[i]
            if good:
                limits[k, int(sign > 0)] = sign * v
            else:
                crossed.append(i)
        open_sides = [i for i, good in zip(open_sides, ok) if good]
        if not open_sides:
            break
    if crossed:   # one more round at half a step past the last good one
        half = [(sides[i][0], sides[i][1] * (abs(limits[sides[i][0], int(sides[i][1] > 0)]) + step / 2)) for i in crossed]
        for (k, value), good in zip(half, keeps_identity(half)):
            if good:
                limits[k, int(value > 0)] = value
    return limits


def _locate(identity, image: np.ndarray):
    """The face's box: dlib's detector, else the face-mesh tracker's (it finds blurrier faces)."""
    if not hasattr(identity, "locate"):
        return None
    box = identity.locate(image)
    if box is None:
        from models.face.tracker import MediaPipeTracker
        with MediaPipeTracker(max_faces=1, video=False, flip_average=False) as tracker:
            obs = tracker.track(image)
        box = obs.box if obs.found else None
    return box


def soft_limit(delta: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Each component eased into [lo, hi] (tanh: small changes pass almost unchanged, large ones level
    off at the limit instead of stopping dead); a limit of 0 holds that side still."""
    d = np.asarray(delta, np.float64)
    lo, hi = limits[:, 0], limits[:, 1]
    bound = np.where(d >= 0, hi, -lo)
    safe = np.maximum(bound, 1e-9)
    return np.where(bound > 0, np.sign(d) * safe * np.tanh(np.abs(d) / safe), 0.0)
