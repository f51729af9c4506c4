"""A differentiable face-parameter regressor: face crop -> live's 15 parameters and dlib's 5 face points.

The live loop tracks faces with MediaPipe and a 3D shape-model fit (models/face/params.py): exact
enough, but not differentiable. Training directions the paper's way needs the parameters of a
generated image as a function of its pixels, so a small CNN is distilled from that tracker
(live/directions/regressor_train.py) and used only in training: the reenactment loss compares its
parameters of the shifted render with the target's, and its 5 points place the identity network's
face chip. It reads crops in the generator's framing (what a generator draws, and real frames cut
the same way), resized to `size` pixels.

Outputs are normalised inside the network (each parameter's tracker range [lo, hi] to [-1, 1], the
points to [0, 1] of the crop) and returned in the tracker's units: degrees for pose, standard
deviations for expressions, pixels of the input for the points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.errors import WeightsError

FORMAT = "live.face_regressor.v1"
N_POINTS = 5


class RegressorError(WeightsError):
    """A regressor file that is missing, damaged, foreign, or made for other parameters; says what to do."""


def _block(cin: int, cout: int) -> nn.Sequential:
    """Halves the size: conv 3x3 stride 2, then conv 3x3, each with batch norm and ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


@dataclass
class RegressorInfo:
    """What the network reads and predicts, saved beside its weights."""
    param_names: tuple[str, ...]
    param_range: np.ndarray               # [P, 2] the tracker's range of each parameter (raw units)
    size: int = 96                        # input pixels (a crop in the generator's framing, resized)
    width: int = 32                       # channels of the first block (doubling at each of the four)
    framing: str = "voxceleb"
    face_model_sha256: str = ""
    agreement: dict = field(default_factory=dict)   # held-out agreement with the tracker (R^2, mean error)
    trained: dict = field(default_factory=dict)     # data, steps, seconds


class FaceParamRegressor(nn.Module):
    """[N, 3, H, W] in [-1, 1] -> (params [N, P] raw units, points [N, 5, 2] pixels of the input)."""

    def __init__(self, info: RegressorInfo):
        super().__init__()
        self.info = info
        width = info.width
        p = len(info.param_names)
        lo, hi = np.asarray(info.param_range, np.float64).T
        self.register_buffer("centre", torch.tensor((lo + hi) / 2, dtype=torch.float32))
        self.register_buffer("half_span", torch.tensor(np.maximum((hi - lo) / 2, 1e-6), dtype=torch.float32))
        self.features = nn.Sequential(_block(3, width), _block(width, 2 * width), _block(2 * width, 4 * width),
                                      _block(4 * width, 8 * width))
        self.head = nn.Sequential(nn.Linear(8 * width, 256), nn.ReLU(inplace=True), nn.Linear(256, p + 2 * N_POINTS))

    @property
    def n_params(self) -> int:
        return len(self.info.param_names)

    def normalised(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(params in [-1, 1] units [N, P], points in [0, 1] of the crop [N, 5, 2]): what training compares."""
        assert images.ndim == 4 and images.shape[1] == 3, f"images must be [N, 3, H, W] in [-1, 1], got {list(images.shape)}"
        x = images
        if x.shape[-1] != self.info.size or x.shape[-2] != self.info.size:
            x = F.interpolate(x, size=(self.info.size, self.info.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.info.size)
        out = self.head(self.features(x).mean((2, 3)))
        p = self.n_params
        return out[:, :p], out[:, p:].view(-1, N_POINTS, 2) + 0.5

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        params, points = self.normalised(images)
        size = torch.tensor([images.shape[-1], images.shape[-2]], dtype=points.dtype, device=points.device)
        return self.centre + self.half_span * params, points * size

    def to_normalised(self, params: torch.Tensor) -> torch.Tensor:
        """Raw parameters -> the network's [-1, 1] units."""
        return (params - self.centre) / self.half_span

    # -- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        from models.atomic_files import atomic_path
        info = {**self.info.__dict__, "param_names": list(self.info.param_names),
                "param_range": np.asarray(self.info.param_range).tolist()}
        state = {k: v.detach().float().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(path) as tmp:
            save_file(state, str(tmp), metadata={"format": FORMAT, "info": json.dumps(info)})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, param_names: tuple[str, ...] | None = None) -> "FaceParamRegressor":
        """Read a regressor; with `param_names`, refuse one that predicts other parameters."""
        from models.weights_io import safe_safetensors_load
        path = Path(path)
        fix = "train one with `live directions regressor -g G -o R.safetensors`"
        if not path.is_file():
            raise RegressorError(f"{path}: no such file; {fix}")
        state, meta = safe_safetensors_load(path, RegressorError, fix[0].upper() + fix[1:] + ".")
        if meta.get("format") != FORMAT:
            raise RegressorError(f"{path}: not a face-parameter regressor (format {meta.get('format')!r}); {fix}")
        raw = json.loads(meta["info"])
        info = RegressorInfo(**{**raw, "param_names": tuple(raw["param_names"]),
                                "param_range": np.asarray(raw["param_range"], np.float64)})
        if param_names is not None and tuple(param_names) != info.param_names:
            raise RegressorError(f"{path}: predicts {', '.join(info.param_names[:4])}, ... ({len(info.param_names)} "
                                 f"parameters), not the {len(param_names)} asked for ({', '.join(param_names[:4])}, "
                                 f"...); {fix}")
        model = cls(info)
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise RegressorError(f"{path}: its tensors do not fit the network ({str(e)[:200]}); {fix}") from None
        return model.eval()
