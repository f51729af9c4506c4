"""The scene of a run: everything `live run` drives, resolved from the config once.

`build_scene` is the one place where a run touches files and the model store: it resolves the
generator, the direction matrix, the avatar and the calibration profile, checks that they belong
together (the avatar was made for this generator, the directions were fitted for it), and hands
the pipeline typed parts. Nothing after it opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from loguru import logger

from calibration.profile import CalibrationProfile
from live.avatar.avatar_file import Avatar, AvatarError
from live.config import GeneratorConfig, LiveConfig
from live.model_store import ModelStore
from live.paths import profiles_dir
from models.checkpoint import load_generator, random_generator, weights_hash
from models.direction_matrix import Directions
from models.face.landmarks import PARAM_NAMES
from models.stylegan2 import STANDARD_ARCHS, Generator
from models.weights_io import file_sha256

NO_FACE_NOTICE = ("no generator weights given: using a randomly initialised {arch} generator. It runs the whole "
                  "loop at full cost but draws no face. For real faces, give a checkpoint with --generator PATH "
                  "(or generator.path in the config); `live models fetch vox256` downloads the paper's VoxCeleb generator (then -g vox256).")


def generator_from_config(cfg: GeneratorConfig, device: str = "cpu") -> Generator:
    if cfg.path:
        return load_generator(ModelStore().resolve(str(cfg.path)), device)
    if cfg.arch not in STANDARD_ARCHS:
        raise ValueError(f"unknown generator arch {cfg.arch!r}; choose one of {', '.join(STANDARD_ARCHS)}")
    logger.warning(NO_FACE_NOTICE.format(arch=cfg.arch))
    return random_generator(STANDARD_ARCHS[cfg.arch], seed=cfg.seed).to(device)


@dataclass
class Scene:
    """What is driven: a generator (tuned for the avatar), its code, its parameters, the directions,
    and the neutral pose of the driver when a calibration profile is given."""
    generator: Generator
    w_s: torch.Tensor                      # [n_latent, S]
    p_s: np.ndarray                        # [P] the avatar's own parameters
    directions: Directions
    description: str
    neutral: np.ndarray | None = None      # [P] the driver's calibrated neutral pose
    photo: np.ndarray | None = None        # the avatar's photo as the renderer frames it (identity watch)
    identity_limits: np.ndarray | None = None   # [P, 2] the identity guard's limits, normalised units
    notices: list[str] = field(default_factory=list)


def demo_directions(G: Generator, seed: int = 0) -> Directions:
    """A random direction matrix in the paper's format for generators without fitted directions:
    it moves the face (so every stage runs at full cost) but means nothing. Said so at start."""
    g = torch.Generator().manual_seed(seed)
    layers = min(8, G.n_latent)  # the paper's 8, or all of a smaller generator's
    weight = torch.randn(layers * G.style_dim, len(PARAM_NAMES), generator=g) * 0.05
    # Typical human ranges (degrees, standard deviations) mapped to [-6, 6], as a fit would.
    spans = [30.0, 20.0, 15.0] + [3.0] * (len(PARAM_NAMES) - 3)
    prange = torch.tensor([[-s, s] for s in spans])
    return Directions(weight=weight, bias=torch.zeros(layers * G.style_dim), param_range=prange,
                      num_layers_shift=layers, shift_dim=G.style_dim, fit_info={"method": "demo: random"})


def build_scene(cfg: LiveConfig, device: str = "cpu") -> Scene:
    store = ModelStore()
    scene = _avatar_scene(cfg, store, device) if cfg.run.avatar else _demo_scene(cfg, store, device)
    if cfg.run.profile:
        scene.neutral = CalibrationProfile.load(cfg.run.profile, profiles_dir()).neutral
    return scene


def _avatar_scene(cfg: LiveConfig, store: ModelStore, device: str) -> Scene:
    info = Avatar.read(cfg.run.avatar)
    g_spec = cfg.generator.path or info.generator_hint
    if not g_spec:
        raise AvatarError(f"{cfg.run.avatar}: give the generator it was made with (-g)")
    try:
        G = load_generator(store.resolve(str(g_spec)), device)
    except Exception as e:
        raise AvatarError(f"{cfg.run.avatar} was made with generator {info.generator_hint!r}, which does not load "
                          f"here ({e}); give it with -g PATH") from None
    avatar = Avatar.load(cfg.run.avatar, G)
    if not cfg.run.directions:
        raise AvatarError("give the direction matrix the avatar is driven with: --directions A.pt "
                          "(`live directions fit` makes one for this generator)")
    d_path = store.resolve(cfg.run.directions)
    directions = Directions.load(d_path, require_ours=False)
    directions.check_live_space(d_path)
    directions.check_generator(weights_hash(G))
    notices = []
    if avatar.directions_sha256 and avatar.directions_sha256 != file_sha256(d_path):
        notices.append("these directions are not the ones the avatar was made with; its p_s still applies, "
                       "but motion may differ from what `live avatar create` previewed")
    limits = avatar.identity_limits if cfg.run.identity_guard else None
    if cfg.run.identity_guard and limits is None:
        from live.avatar.identity_limits import identity_limits
        logger.info("{} holds no identity limits (made before they existed, or without -d): measuring them now "
                    "(seconds; `live avatar create ... -d A.pt` stores them)", cfg.run.avatar)
        limits = identity_limits(avatar.generator, avatar.w_s, directions)
    return Scene(avatar.generator, avatar.w_s, avatar.p_s.numpy().astype(np.float64), directions,
                 f"avatar {cfg.run.avatar}", notices=notices, photo=avatar.crop, identity_limits=limits)


def _demo_scene(cfg: LiveConfig, store: ModelStore, device: str) -> Scene:
    G = generator_from_config(cfg.generator, device)
    g = torch.Generator().manual_seed(cfg.generator.seed)
    with torch.no_grad():
        w = G.mapping(torch.randn(1, G.style_dim, generator=g).to(G.w_avg.device), 0.7)
    notices = []
    if cfg.run.directions:
        d_path = store.resolve(cfg.run.directions)
        directions = Directions.load(d_path, require_ours=False)
        directions.check_live_space(d_path)
    else:
        directions = demo_directions(G)
        notices.append("no --directions: using random demo directions, so the face moves but does not follow "
                       "yours. Fit real ones with `live directions fit -g G.pt -o A.pt`.")
    notices.append("no --avatar: driving a random face of the generator. Make your own with "
                   "`live avatar create PHOTO -g G.pt -d A.pt -o me.pt`.")
    return Scene(G, G.broadcast(w)[0].cpu(), np.zeros(directions.n_params), directions, "a random face",
                 notices=notices)
