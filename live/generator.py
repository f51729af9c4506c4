"""Getting the generator the config asks for: a checkpoint, or random weights of a known architecture."""

from __future__ import annotations

from loguru import logger

from live.config import GeneratorConfig
from models import STANDARD_ARCHS, Generator, load_generator, random_generator

NO_FACE_NOTICE = ("no generator weights given: using a randomly initialised {arch} generator. It runs the whole "
                  "loop at full cost but draws no face. For real faces, give a checkpoint with --generator PATH "
                  "(or generator.path in the config); `live models fetch vox256` downloads the paper's VoxCeleb generator (then -g vox256).")


def generator_from_config(cfg: GeneratorConfig, device: str = "cpu") -> Generator:
    if cfg.path:
        from live.model_store import ModelStore
        return load_generator(ModelStore().resolve(str(cfg.path)), device)
    if cfg.arch not in STANDARD_ARCHS:
        raise ValueError(f"unknown generator arch {cfg.arch!r}; choose one of {', '.join(STANDARD_ARCHS)}")
    logger.warning(NO_FACE_NOTICE.format(arch=cfg.arch))
    return random_generator(STANDARD_ARCHS[cfg.arch], seed=cfg.seed).to(device)
