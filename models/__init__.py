"""Networks and weight formats: StyleGAN2 and its checkpoints."""

from models.checkpoint import (CheckpointError, load_generator, random_generator, save_safetensors,
                               weights_hash)
from models.stylegan2 import STANDARD_ARCHS, Generator, GeneratorArch

__all__ = ["CheckpointError", "Generator", "GeneratorArch", "STANDARD_ARCHS", "load_generator",
           "random_generator", "save_safetensors", "weights_hash"]
