"""What `python -m bench quality` drives: an avatar made from one photo, rendered for a parameter change.

A reenactor makes an avatar from a photo and renders frames for normalised delta_p, through the
same Renderer `live run` uses. It also maps any image of the photo's (or the driver's) camera
into its output's frame, at the evaluation size, so outputs and real frames are compared pixel
for pixel.
"""

from __future__ import annotations

import numpy as np

from bench.reenactment_metrics import EVAL_SIZE
from live.config import EngineConfig


def upscale(image: np.ndarray, size: int = EVAL_SIZE) -> np.ndarray:
    import cv2
    if image.shape[0] == size:
        return image
    interp = cv2.INTER_CUBIC if image.shape[0] < size else cv2.INTER_AREA
    return cv2.resize(image, (size, size), interpolation=interp)


class StyleGANReenactor:
    """The paper's method: the photo inverted into W+, driven through the direction matrix A."""

    name = "stylegan2"
    retargets_blinks = False     # as in live run (live/pipeline/motion.py MotionStage)

    def __init__(self, generator, directions, framing: str = "fixture", steps: int = 100, tune_steps: int = 0,
                 engine: EngineConfig | None = None, identity_guard: bool = True):
        self.G, self.directions, self.framing, self.identity_guard = generator, directions, framing, identity_guard
        self.steps, self.tune_steps = steps, tune_steps
        self.engine_cfg = engine or EngineConfig(backend="eager", device="cpu")
        span = (directions.param_range[:, 1] - directions.param_range[:, 0]).numpy().astype(np.float64)
        self.to_norm = 2 * directions.shift_scale / span     # raw parameter change -> normalised units
        self.avatar = self.renderer = None

    def make(self, photo_path) -> None:
        from live.avatar.create import AvatarOptions, create_avatar
        from live.avatar.invert import InversionConfig
        from live.avatar.pti import TuningConfig
        from live.engines import make_engine
        from live.pipeline.render import Renderer
        opts = AvatarOptions(framing=self.framing, pti=self.tune_steps > 0, inversion=InversionConfig(steps=self.steps),
                             tuning=TuningConfig(steps=max(self.tune_steps, 1)), progress=False)
        self.avatar, _ = create_avatar(photo_path, self.G, opts,
                                       directions=self.directions if self.identity_guard else None)
        G = self.avatar.generator
        engine = make_engine(G, self.engine_cfg)
        self.renderer = Renderer(engine, self.avatar.w_s, G.w_avg, self.directions, (G.resolution, G.resolution))
        self.renderer.warm_up()

    def render(self, delta_norm: np.ndarray, gaze: np.ndarray | None = None, mouth=None) -> np.ndarray:
        """The avatar moved by `delta_norm` [P] (eased into its identity limits, as `live run` does), at the
        evaluation size. (No gaze: the directions have no gaze parameter; no mouth: the generator draws its own.)"""
        if self.avatar.identity_limits is not None:
            from live.avatar.identity_limits import soft_limit
            delta_norm = soft_limit(delta_norm, self.avatar.identity_limits)
        return upscale(self.renderer(np.asarray(delta_norm, np.float32)))

    def to_eval(self, image: np.ndarray) -> np.ndarray:
        """An image of the photo's camera, cropped as the avatar was, at the evaluation size."""
        import cv2
        scale = EVAL_SIZE / self.G.resolution
        return cv2.warpAffine(image, self.avatar.crop_matrix * scale, (EVAL_SIZE, EVAL_SIZE), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)

    def at_output_resolution(self, image: np.ndarray) -> np.ndarray:
        """The same crop at the generator's resolution, then brought to the evaluation size: what a
        perfect renderer of this resolution would show (the ceiling for the real-frames baseline)."""
        import cv2
        R = self.G.resolution
        crop = cv2.warpAffine(image, self.avatar.crop_matrix, (R, R), flags=cv2.INTER_AREA,
                              borderMode=cv2.BORDER_REPLICATE)
        return upscale(crop)


class WarpReenactor:
    """The mesh warp of the photo (live/warp). Its output is the photo's own frame; both it and real frames
    are compared in the VoxCeleb crop of the photo's face, at the evaluation size."""

    name = "warp"
    retargets_blinks = True      # as in live run (live/pipeline/motion.py retarget_blinks)

    def __init__(self, **_):
        from models.face.landmarks import PARAM_NAMES
        from models.face.params import ParameterSpace
        from models.face.shape_model import FaceModel
        self.model = FaceModel.load()
        self.space = ParameterSpace(PARAM_NAMES, self.model.param_range)
        self.to_norm = self.space.to_norm
        self.shut = self.space.param_range[:, 1]            # the blink a shut eye reads
        self.avatar = self.renderer = self.crop = None

    @property
    def own(self) -> np.ndarray:
        """The avatar's own raw parameters (its photo's)."""
        return np.asarray(self.avatar.p_s, np.float64)

    def make(self, photo_path) -> None:
        from live.warp.renderer import WarpRenderer
        from live.warp.create_avatar import create_warp_avatar
        from models.framing import crop_transform
        self.avatar = create_warp_avatar(photo_path)
        self.renderer = WarpRenderer(self.avatar, self.space, self.model)
        self.crop = crop_transform(self.avatar.landmarks, "voxceleb", EVAL_SIZE)

    def photo_shape(self) -> tuple[int, int]:
        return self.avatar.photo.shape[:2]

    def render(self, delta_norm: np.ndarray, gaze: np.ndarray | None = None, mouth=None) -> np.ndarray:
        return self.crop.apply(self.renderer(delta_norm, gaze, mouth))

    def to_eval(self, image: np.ndarray) -> np.ndarray:
        """An image of the photo's camera (the avatar's photo may be downscaled: brought to its size first)."""
        import cv2
        h, w = self.photo_shape()
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        return self.crop.apply(image)

    def at_output_resolution(self, image: np.ndarray) -> np.ndarray:
        return self.to_eval(image)      # the warp draws at the photo's own resolution


def make_reenactor(kind: str, generator=None, directions=None, **options):
    if kind == "stylegan2":
        if generator is None or directions is None:
            raise SystemExit("--renderer stylegan2 needs a generator (-g) and a direction matrix (-d)")
        return StyleGANReenactor(generator, directions, **options)
    if kind == "warp":
        return WarpReenactor(**options)
    raise SystemExit(f"unknown renderer {kind!r}; choose stylegan2 or warp")
