"""A linear 3D face shape model over the face mesh and the fit that gives p = [pose, expression].

    s = s_mean + S_id p_id + S_exp p_exp        (model frame, unit size)
    landmarks ~ scale * R s + t                 (camera frame: x right, y down, z away, pixels)

Head pose comes from a weighted rigid (similarity) alignment: rigid points (nose bridge,
eye corners, face outline) weigh most, mobile ones (lips, jaw, lids) least. The expression is
factored out by alternating: align to the current model shape, measure p_exp on the aligned
(pose-free) landmarks, solve p_id for the rest, rebuild the model shape, align again.

p_exp is measured rather than solved jointly by least squares: correlated motions (chin and
lips, both lids) would otherwise be split between coefficients, and identity misfit would leak
into small signals such as the eyelids. Measured, each coefficient means what its name says.

Angles are in degrees in a y-up, z-toward-camera frame: yaw about the vertical axis, pitch
about the horizontal one, roll in the image plane (positive: counter-clockwise on screen).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.face.landmarks import EXPRESSION_NAMES, PARAM_NAMES, measure_expressions

FORMAT_VERSION = 1
# Image frame (x right, y down, z away) <-> y-up, z-toward-camera frame for the angles.
_FLIP = np.diag([1.0, -1.0, -1.0])


def similarity_align(model: np.ndarray, target: np.ndarray, weights: np.ndarray):
    """Weighted Umeyama: (scale, R, t) minimising sum_i w_i |target_i - (scale R model_i + t)|^2."""
    w = weights / weights.sum()
    mu_m, mu_t = w @ model, w @ target
    mc, tc = model - mu_m, target - mu_t
    cov = (tc * w[:, None]).T @ mc
    u, sv, vt = np.linalg.svd(cov)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0
    rot = (u * d) @ vt
    scale = float((sv * d).sum() / (w @ (mc**2).sum(1)))
    return scale, rot, mu_t - scale * rot @ mu_m


def angles_from_rotation(rot: np.ndarray) -> np.ndarray:
    """Model-to-camera rotation (image frame) -> (yaw, pitch, roll) in degrees."""
    r = _FLIP @ rot @ _FLIP
    yaw = np.arcsin(np.clip(-r[2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[2, 1], r[2, 2])
    roll = np.arctan2(r[1, 0], r[0, 0])
    return np.degrees([yaw, pitch, roll])


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """(yaw, pitch, roll) in degrees -> model-to-camera rotation in the image frame."""
    a, b, g = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    return _FLIP @ (rz @ ry @ rx) @ _FLIP


@dataclass(frozen=True)
class FaceFit:
    """One frame's parameters. `params` is the paper's 15-vector: yaw, pitch, roll, jaw, e1..e11."""

    pose: np.ndarray          # [3] yaw, pitch, roll in degrees
    expression: np.ndarray    # [12] in EXPRESSION_NAMES order (jaw first)
    identity: np.ndarray      # [K_id]
    scale: float              # pixels per model unit
    rotation: np.ndarray      # [3, 3] model -> camera (image frame)
    translation: np.ndarray   # [3] pixels
    residual: float           # weighted RMS distance of the landmarks to the model, model units

    @property
    def params(self) -> np.ndarray:
        return np.concatenate([self.pose, self.expression])


@dataclass
class FaceModel:
    mean: np.ndarray                 # [N, 3]
    id_basis: np.ndarray             # [K_id, N, 3]
    id_std: np.ndarray               # [K_id] prior std of p_id
    exp_basis: np.ndarray            # [12, N, 3]: mesh motion per unit of each coefficient
    exp_scale: np.ndarray            # [12] measurement units per coefficient unit
    weights: np.ndarray              # [N] rigidity weights for the pose alignment
    mirror: np.ndarray               # [N] index of each landmark's mirror partner
    param_range: np.ndarray          # [15, 2] observed 1st..99th percentile of each parameter
    meta: dict = field(default_factory=dict)
    iterations: int = 3

    def __post_init__(self):
        n = self.mean.shape[0]
        assert self.mean.shape == (n, 3), "mean must be [N, 3]"
        assert self.exp_basis.shape == (len(EXPRESSION_NAMES), n, 3), "exp_basis must be [12, N, 3]"
        self._id_flat = self.id_basis.reshape(len(self.id_basis), -1)
        self._exp_flat = self.exp_basis.reshape(len(self.exp_basis), -1)
        # A ridge toward the identity prior keeps p_id small where the data say little.
        ridge = 1e-4 / np.maximum(self.id_std, 1e-6) ** 2
        self._id_solve = np.linalg.solve(self._id_flat @ self._id_flat.T + np.diag(ridge), self._id_flat)
        self.exp_center = measure_expressions(self.mean)  # p_exp = 0 at the mean shape

    def expression_of(self, aligned: np.ndarray) -> np.ndarray:
        """Expression coefficients of pose-normalised shapes [..., N, 3]."""
        return (measure_expressions(aligned) - self.exp_center) / self.exp_scale

    @property
    def n_landmarks(self) -> int:
        return self.mean.shape[0]

    def shape(self, identity: np.ndarray | None = None, expression: np.ndarray | None = None) -> np.ndarray:
        s = self.mean.copy()
        if identity is not None:
            s += np.tensordot(identity, self.id_basis, 1)
        if expression is not None:
            s += np.tensordot(expression, self.exp_basis, 1)
        return s

    def fit(self, landmarks: np.ndarray) -> FaceFit:
        """Landmarks [N, 3] in pixels (tracker output) -> pose, expression, identity."""
        x = np.asarray(landmarks, dtype=np.float64)
        if x.shape != self.mean.shape:
            raise ValueError(f"landmarks must be [{self.n_landmarks}, 3], got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError("landmarks contain NaN or Inf")
        model_shape = self.mean
        for _ in range(self.iterations):
            scale, rot, t = similarity_align(model_shape, x, self.weights)
            aligned = (x - t) @ rot / scale  # into the model frame
            p_exp = self.expression_of(aligned)
            expressive = self.mean.reshape(-1) + p_exp @ self._exp_flat
            p_id = self._id_solve @ (aligned.reshape(-1) - expressive)
            model_shape = (expressive + p_id @ self._id_flat).reshape(-1, 3)
        scale, rot, t = similarity_align(model_shape, x, self.weights)
        aligned = (x - t) @ rot / scale
        w = self.weights / self.weights.sum()
        residual = float(np.sqrt(w @ ((aligned - model_shape) ** 2).sum(1)))
        return FaceFit(pose=angles_from_rotation(rot), expression=self.expression_of(aligned), identity=p_id,
                       scale=scale, rotation=rot, translation=t, residual=residual)

    def save(self, file) -> None:
        """The model as npz, into an open binary file (the caller makes the write atomic:
        models.atomic_files, which this package does not import)."""
        np.savez_compressed(file, mean=self.mean.astype(np.float32), id_basis=self.id_basis.astype(np.float32),
                            id_std=self.id_std.astype(np.float32), exp_basis=self.exp_basis.astype(np.float32),
                            exp_scale=self.exp_scale.astype(np.float32), weights=self.weights.astype(np.float32), mirror=self.mirror.astype(np.int32),
                            param_range=self.param_range.astype(np.float32),
                            param_names=np.array(PARAM_NAMES), format_version=np.array(FORMAT_VERSION),
                            meta=np.array(repr(self.meta)))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "FaceModel":
        """Load a model file; without a path, the one shipped with the project."""
        path = Path(path) if path else default_model_path()
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise ValueError(f"cannot read face model {path}: {e}. Rebuild it with `live face-model build`.") from None
        if int(data.get("format_version", -1)) != FORMAT_VERSION:
            raise ValueError(f"{path}: face model format {data.get('format_version')} is not {FORMAT_VERSION}; "
                             "rebuild it with `live face-model build`")
        if tuple(data["param_names"]) != PARAM_NAMES:
            raise ValueError(f"{path}: parameters {tuple(data['param_names'])} differ from {PARAM_NAMES}")
        return cls(mean=data["mean"].astype(np.float64), id_basis=data["id_basis"].astype(np.float64),
                   id_std=data["id_std"].astype(np.float64), exp_basis=data["exp_basis"].astype(np.float64),
                   exp_scale=data["exp_scale"].astype(np.float64), weights=data["weights"].astype(np.float64), mirror=data["mirror"].astype(np.int64),
                   param_range=data["param_range"].astype(np.float64), meta={"source": str(data["meta"])})


def default_model_path() -> Path:
    return Path(__file__).resolve().parents[1] / "data" / "face_model.npz"
