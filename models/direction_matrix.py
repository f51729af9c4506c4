"""The direction matrix A: a change of face parameters -> a shift of the first W+ layers.

    delta_w = (A_matrix.linear(delta_p_normalised)).view(B, num_layers_shift, shift_dim)

added to the first `num_layers_shift` W+ codes (Bounareli et al. 2022). Each parameter is
normalised from its range [lo, hi] to [-shift_scale, shift_scale] (the paper: [-6, 6]), so a
raw change d becomes d * 2 * shift_scale / (hi - lo).

Files use the paper's `A_matrix.pt` layout (keys learned_directions, shift_scale, w_plus,
num_layers_shift, shift_dim, A_matrix = {linear.weight, linear.bias}), which the paper's own
code reads, plus our keys beside it: param_names, param_range, generator_sha256,
face_model_sha256 and fit_info. Loading is weights_only (tensors and plain values only).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.errors import DirectionsError
from models.face.landmarks import PARAM_NAMES
from models.atomic_files import save_torch_atomic
from models.weights_io import safe_torch_load

PAPER_KEYS = ("learned_directions", "shift_scale", "w_plus", "num_layers_shift", "shift_dim", "A_matrix")
# The paper's 15 inputs are DECA's (yaw, pitch, roll, jaw opening, 11 expression coefficients): not the
# parameters live's tracker measures. Its files name no parameters; they load under these names.
DECA_NAMES = ("deca_yaw", "deca_pitch", "deca_roll", "deca_jaw") + tuple(f"deca_exp{i}" for i in range(1, 12))


@dataclass
class Directions:
    weight: torch.Tensor                 # [num_layers_shift * shift_dim, P]
    bias: torch.Tensor                   # [num_layers_shift * shift_dim]
    param_range: torch.Tensor            # [P, 2] raw range mapped to [-shift_scale, shift_scale]
    num_layers_shift: int = 8
    shift_dim: int = 512
    shift_scale: float = 6.0
    param_names: tuple[str, ...] = PARAM_NAMES
    generator_sha256: str = ""
    face_model_sha256: str = ""
    fit_info: dict = field(default_factory=dict)

    def __post_init__(self):
        p = len(self.param_names)
        out = self.num_layers_shift * self.shift_dim
        if tuple(self.weight.shape) != (out, p):
            raise DirectionsError(f"A_matrix linear.weight must be [{out}, {p}], got {list(self.weight.shape)}")
        if tuple(self.bias.shape) != (out,):
            raise DirectionsError(f"A_matrix linear.bias must be [{out}], got {list(self.bias.shape)}")
        if tuple(self.param_range.shape) != (p, 2):
            raise DirectionsError(f"param_range must be [{p}, 2], got {list(self.param_range.shape)}")
        if not (torch.isfinite(self.weight).all() and torch.isfinite(self.bias).all()):
            raise DirectionsError("the direction matrix holds NaN or Inf values; fit it again")

    def to(self, device) -> "Directions":
        """A copy whose matrix (weight, bias) lives on `device`, where the generator is: what every user of
        the matrix there needs. The parameter range stays on the host with the driver's parameters."""
        moved = copy.copy(self)
        moved.weight, moved.bias = self.weight.to(device), self.bias.to(device)
        return moved

    @property
    def device(self) -> torch.device:
        return self.weight.device

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    def normalise_delta(self, delta_p: torch.Tensor) -> torch.Tensor:
        """Raw parameter changes [B, P] -> changes in the normalised [-s, s] units."""
        span = (self.param_range[:, 1] - self.param_range[:, 0]).to(delta_p)
        return delta_p * (2 * self.shift_scale) / span

    def shift(self, delta_p_normalised: torch.Tensor) -> torch.Tensor:
        """Normalised parameter changes [B, P] -> delta_w [B, num_layers_shift, shift_dim]."""
        assert delta_p_normalised.ndim == 2 and delta_p_normalised.shape[1] == self.n_params, \
            f"delta_p must be [B, {self.n_params}]"
        out = torch.nn.functional.linear(delta_p_normalised, self.weight.to(delta_p_normalised),
                                         self.bias.to(delta_p_normalised))
        return out.view(-1, self.num_layers_shift, self.shift_dim)

    def apply(self, w_plus: torch.Tensor, delta_w: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """w_plus [B, L, S] with delta_w added to its first num_layers_shift layers."""
        assert w_plus.shape[1] >= self.num_layers_shift and w_plus.shape[2] == self.shift_dim, \
            f"w_plus must be [B, >={self.num_layers_shift}, {self.shift_dim}]"
        out = w_plus.clone()
        out[:, : self.num_layers_shift] += strength * delta_w.to(w_plus)
        return out

    # --- files --------------------------------------------------------------------------

    def to_file_dict(self) -> dict:
        return {"learned_directions": self.n_params, "shift_scale": float(self.shift_scale), "w_plus": True,
                "num_layers_shift": self.num_layers_shift, "shift_dim": self.shift_dim,
                "A_matrix": {"linear.weight": self.weight.detach().float().cpu().contiguous(),
                             "linear.bias": self.bias.detach().float().cpu().contiguous()},
                "param_names": list(self.param_names), "param_range": self.param_range.detach().float().cpu(),
                "generator_sha256": self.generator_sha256, "face_model_sha256": self.face_model_sha256,
                "fit_info": dict(self.fit_info)}

    def save(self, path: str | Path) -> Path:
        return save_torch_atomic(self.to_file_dict(), path)

    @classmethod
    def load(cls, path: str | Path, require_ours: bool = True) -> "Directions":
        """Read a direction file. The paper's own files lack param_range and the hashes: with
        require_ours=False they load with the [-6, 6] range assumed (already-normalised input)."""
        path = Path(path)
        if not path.is_file():
            raise DirectionsError(f"{path}: no such file; make one with `live directions fit`")
        d = safe_torch_load(path, DirectionsError, "a direction matrix (`live directions fit` makes one)")
        return cls.from_file_dict(d, path, require_ours)

    @classmethod
    def from_file_dict(cls, d: dict, path: str | Path = "direction matrix", require_ours: bool = True) -> "Directions":
        """The matrix from a file's dictionary (a direction file's, or the copy inside an avatar)."""
        if not isinstance(d, dict) or any(k not in d for k in PAPER_KEYS):
            keys = list(d)[:8] if isinstance(d, dict) else type(d).__name__
            raise DirectionsError(f"{path}: not a direction matrix (expected keys {', '.join(PAPER_KEYS)}; found {keys})")
        if not d["w_plus"]:
            raise DirectionsError(f"{path}: a W-space (not W+) direction matrix, which live does not use")
        lin = d["A_matrix"]
        if not isinstance(lin, dict) or "linear.weight" not in lin or "linear.bias" not in lin:
            raise DirectionsError(f"{path}: A_matrix must hold linear.weight and linear.bias")
        n = int(d["learned_directions"])
        names = tuple(d.get("param_names") or (DECA_NAMES if n == len(DECA_NAMES) else [f"p{i}" for i in range(n)]))
        if "param_range" in d:
            prange = d["param_range"].float()
        elif require_ours:
            raise DirectionsError(f"{path}: a direction matrix without parameter ranges (the paper's own file?); "
                                  "fit one for your generator with `live directions fit`")
        else:
            s = float(d["shift_scale"])
            prange = torch.tensor([[-s, s]] * n)
        return cls(weight=lin["linear.weight"].float(), bias=lin["linear.bias"].float(), param_range=prange,
                   num_layers_shift=int(d["num_layers_shift"]), shift_dim=int(d["shift_dim"]),
                   shift_scale=float(d["shift_scale"]), param_names=names,
                   generator_sha256=str(d.get("generator_sha256", "")),
                   face_model_sha256=str(d.get("face_model_sha256", "")), fit_info=dict(d.get("fit_info", {})))

    @property
    def space(self):
        """The parameter space its input lives in (names, ranges, scale)."""
        from models.face.params import ParameterSpace
        return ParameterSpace(tuple(self.param_names), self.param_range.numpy().astype(np.float64), self.shift_scale)

    @property
    def in_live_space(self) -> bool:
        """Driven by live's own face parameters (not the paper's DECA ones)."""
        return tuple(self.param_names) == PARAM_NAMES

    def check_live_space(self, source: str | Path = "this direction matrix") -> None:
        if not self.in_live_space:
            raise DirectionsError(f"{source}: a direction matrix of other face parameters ({', '.join(self.param_names[:4])}, "
                                  f"...; the paper's DECA ones), which live's tracker does not measure. Adopt it for "
                                  f"live's parameters first: live directions adopt -g G -d {source} -o A.pt")

    def check_generator(self, generator_sha256: str) -> None:
        if self.generator_sha256 and generator_sha256 != self.generator_sha256:
            raise DirectionsError(f"these directions were fitted for generator {self.generator_sha256[:12]}, not for "
                                  f"{generator_sha256[:12]}; fit them for this generator with `live directions fit`")


def reenact(directions: Directions, p_source: torch.Tensor, p_target: torch.Tensor) -> torch.Tensor:
    """delta_w that moves the source's face toward the target parameters: A (p_t - p_s), normalised.
    p_source, p_target: [B, P] or [P] raw parameters. Returns [B, num_layers_shift, shift_dim]."""
    p_source, p_target = torch.atleast_2d(p_source.float()), torch.atleast_2d(p_target.float())
    return directions.shift(directions.normalise_delta(p_target - p_source))
