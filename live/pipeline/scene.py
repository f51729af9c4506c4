"""The scene of a run: everything `live run` drives, resolved from the config once.

`build_scene` is the one place where a run touches files and the model store: it resolves the
avatar (and from its file, which renderer draws it), the generator, the direction matrix and the
calibration profile, checks that they belong together (the avatar was made for this generator,
the directions were fitted for it), and hands the pipeline typed parts. Nothing after it opens a file.

Renderers: "stylegan2" (the paper's method: W+ code, directions, a generator) and "warp" (the
mesh warp of a photo, live/warp). With no avatar and no generator the scene is the bundled demo
painting, warped: the first run shows a face offline. `--generator random` gives a random
generator of the paper's architecture instead (it draws no face; for benchmarking).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from calibration.profile import CalibrationProfile
from live.avatar.avatar_file import WARP_FORMAT, Avatar, AvatarError, read_avatar_file
from live.config import GeneratorConfig, LiveConfig
from live.model_store import ModelStore
from live.paths import profiles_dir
from live.warp.create_avatar import create_warp_avatar
from live.warp.warp_avatar import WarpAvatar, load_warp_avatar
from models.checkpoint import load_generator, random_generator, weights_hash
from models.direction_matrix import Directions
from models.face.landmarks import PARAM_NAMES
from models.face.params import ParameterSpace
from models.stylegan2 import STANDARD_ARCHS, Generator
from models.weights_io import file_sha256

NO_FACE_NOTICE = ("a randomly initialised {arch} generator: it runs the whole loop at full cost but draws no face. "
                  "For real faces, give a checkpoint with --generator PATH; `live models fetch vox256` downloads "
                  "the paper's VoxCeleb generator (then -g vox256).")
RANDOM = "random"      # --generator random: random weights of generator.arch
DEMO_PHOTO = Path(__file__).resolve().parents[1] / "assets" / "portrait_vermeer.jpg"


def generator_from_config(cfg: GeneratorConfig, device: str = "cpu") -> Generator:
    if cfg.path and cfg.path != RANDOM:
        return load_generator(ModelStore().resolve(str(cfg.path)), device)
    if cfg.arch not in STANDARD_ARCHS:
        raise ValueError(f"unknown generator arch {cfg.arch!r}; choose one of {', '.join(STANDARD_ARCHS)}")
    logger.warning(NO_FACE_NOTICE.format(arch=cfg.arch))
    return random_generator(STANDARD_ARCHS[cfg.arch], seed=cfg.seed).to(device)


@dataclass
class Scene:
    """What is driven, by which renderer, from which resting parameters, in which parameter space."""
    kind: str                              # "stylegan2" or "warp"
    p_s: np.ndarray                        # [P] the avatar's own parameters
    space: ParameterSpace                  # the units the driver's change is handed on in
    description: str
    generator: Generator | None = None     # stylegan2: the generator (tuned for the avatar)
    w_s: torch.Tensor | None = None        # stylegan2: [n_latent, S]
    directions: Directions | None = None   # stylegan2: delta_p -> delta_w
    warp: WarpAvatar | None = None         # warp: the photo and its mesh
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
    if cfg.run.avatar:
        kind = read_avatar_file(cfg.run.avatar)["format"]
        scene = _warp_scene(cfg.run.avatar) if kind == WARP_FORMAT else _avatar_scene(cfg, store, device)
    elif cfg.generator.path:
        scene = _generator_scene(cfg, store, device)
    else:
        scene = _warp_scene(DEMO_PHOTO)
    if cfg.run.profile:
        scene.neutral = CalibrationProfile.load(cfg.run.profile, profiles_dir()).neutral
    if scene.kind == "warp":
        _warn_latent_options(cfg)
    return scene


def _warn_latent_options(cfg: LiveConfig) -> None:
    """Options that shape a StyleGAN2 avatar's latent code do nothing to a warp avatar (it has none): said, rather
    than ignored silently."""
    set_ = [flag for flag, value, default in (("--strength", cfg.run.strength, 1.0),
                                              ("--latent-smoothing", cfg.run.latent_smoothing, 0.0),
                                              ("--truncation", cfg.generator.truncation, 1.0)) if value != default]
    if set_:
        logger.warning("{} shape{} a StyleGAN2 avatar's latent code; a warp avatar has none, so {} not used",
                       " and ".join(set_), "" if len(set_) > 1 else "s", "they are" if len(set_) > 1 else "it is")


def _warp_scene(source: str | Path) -> Scene:
    """A warp avatar file, or the bundled demo painting (made on the spot, a second)."""
    from models.face.shape_model import FaceModel
    space = ParameterSpace(PARAM_NAMES, FaceModel.load().param_range)
    if Path(source) == DEMO_PHOTO:
        warp = create_warp_avatar(DEMO_PHOTO)
        notices = ["no --avatar and no --generator: animating the bundled demo painting (Vermeer, public domain) with "
                   "the mesh-warp renderer. Your own: `live avatar create photo.jpg -o me.pt`, then --avatar me.pt; "
                   "the paper's StyleGAN2 method: `live models fetch vox256`, then -g vox256"]
        return Scene("warp", warp.p_s, space, "the demo painting (mesh warp)", warp=warp, photo=warp.photo,
                     notices=notices)
    warp = load_warp_avatar(source)
    return Scene("warp", warp.p_s, space, f"avatar {source} (mesh warp)", warp=warp, photo=warp.photo)


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
    notices = []
    if cfg.run.directions:
        d_path = store.resolve(cfg.run.directions)
        directions = Directions.load(d_path, require_ours=False)
        if avatar.directions_sha256 and avatar.directions_sha256 != file_sha256(d_path):
            notices.append(f"{d_path} is not the direction matrix {cfg.run.avatar} was made with; its identity "
                           "limits were measured with the other one")
    elif avatar.directions is not None:
        d_path = f"{cfg.run.avatar} (its own direction matrix)"
        directions = Directions.from_file_dict(avatar.directions, d_path, require_ours=False)
    else:
        raise AvatarError(f"{cfg.run.avatar} carries no direction matrix (made without -d): give it with "
                          f"--directions A.pt (`live directions fit -g G -o A.pt` makes one)")
    directions.check_live_space(d_path)
    directions.check_generator(weights_hash(G))
    scene = _placed(Scene("stylegan2", avatar.p_s.numpy().astype(np.float64), directions.space,
                          f"avatar {cfg.run.avatar}", generator=avatar.generator, w_s=avatar.w_s,
                          directions=directions, notices=notices, photo=avatar.crop,
                          identity_limits=avatar.identity_limits if cfg.run.identity_guard else None))
    if cfg.run.identity_guard and scene.identity_limits is None:
        from live.avatar.identity_limits import identity_limits
        logger.info("{} holds no identity limits (made before they existed, or without -d): measuring them now "
                    "(seconds; `live avatar create ... -d A.pt` stores them)", cfg.run.avatar)
        scene.identity_limits = identity_limits(scene.generator, scene.w_s, scene.directions)
    return scene


def _placed(scene: Scene) -> Scene:
    """The one place a StyleGAN2 scene's tensors are put on the generator's device: the avatar's code and
    the direction matrix come from files on the host, the generator was loaded onto the run's device,
    and everything after this (the identity limits measured here, the frame body) renders there.
    The identity limits and resting parameters stay on the host with the driver's parameters."""
    device = scene.generator.w_avg.device
    scene.w_s = scene.w_s.detach().to(device)
    scene.directions = scene.directions.to(device)
    return scene


def _generator_scene(cfg: LiveConfig, store: ModelStore, device: str) -> Scene:
    """A random face of a generator (a checkpoint, or random weights with --generator random)."""
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
    return _placed(Scene("stylegan2", np.zeros(directions.n_params), directions.space, "a random face",
                         generator=G, w_s=G.broadcast(w)[0], directions=directions, notices=notices))
