"""Networks and weight formats: StyleGAN2 and its checkpoints, e4e, direction matrices, the face
tracker and 3D face model (models/face/).

The common names are importable from here (`from models import load_generator`); they load on
first use, so importing a light module such as models.face.landmarks does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {"CheckpointError": "models.errors", "Generator": "models.stylegan2", "GeneratorArch": "models.stylegan2",
            "STANDARD_ARCHS": "models.stylegan2", "load_generator": "models.checkpoint",
            "random_generator": "models.checkpoint", "save_safetensors": "models.checkpoint",
            "weights_hash": "models.checkpoint"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
