"""The configuration tree: typed dataclasses with documented defaults, read from YAML.

Precedence, lowest first: the defaults below, the user's config file
(`live config path`), a file given with --config, command-line flags.
Every field's `help` is its documentation: `live config show` prints it as YAML comments.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


def option(default, help: str, **kw):
    """A config field with its documentation attached."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class LogConfig:
    level: str = option("INFO", "log level: TRACE, DEBUG, INFO, WARNING, ERROR")
    file: str | None = option(None, "also write the log to this file (rotated at 10 MB)")


@dataclass
class GeneratorConfig:
    path: str | None = option(
        None, "generator weights: a checkpoint of the reference StyleGAN2 trainer (.pt) or a "
              "`live models convert` safetensors file. Empty: a randomly initialised generator of `arch`, "
              "which runs the whole loop but draws no face")
    arch: str = option("vox256", "architecture for random weights: vox256 (the paper's 256 px, channel "
                                 "multiplier 1), 256-cm2, 1024-cm2 (FFHQ config-f) or fixture128")
    seed: int = option(0, "seed of the random weights when no path is given")
    truncation: float = option(1.0, "truncation psi toward the mean code (1 = none, 0.7 = typical)")


@dataclass
class EngineConfig:
    backend: str = option("auto", "synthesis backend: auto (compiled on CUDA, eager on CPU), eager, compiled, tensorrt")
    precision: str = option("auto", "fp32, fp16 or bf16 (mixed: bfloat16 convolutions, fp32 weights); auto = fp16 on CUDA, bf16 on CPUs with AVX512-BF16/AMX, else fp32")
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    batch: int = option(1, "images per run; static backends are built for exactly this batch size")
    torch_compile: bool = option(True, "compiled backend: run torch.compile (inductor) on the synthesis graph")
    compile_mode: str = option("default", "torch.compile mode: default (fast start) or max-autotune-no-cudagraphs "
                                          "(tunes kernels for minutes once, cached by inductor afterwards)")
    cuda_graph: bool = option(True, "compiled backend on CUDA: one CUDA graph per frame (latent blend, synthesis "
                                    "and post-process in `live run`; synthesis alone in benchmarks)")
    warmup_iters: int = option(3, "runs before capture/timing so kernels are chosen and caches filled")
    cache_dir: str | None = option(None, "where built TensorRT engines are kept; empty: <user cache>/engines")


def _per_param(pose: float, expression: float, **special: float) -> dict:
    from models.face_landmarks import EXPRESSION_NAMES, POSE_NAMES
    values = {n: pose for n in POSE_NAMES} | {n: expression for n in EXPRESSION_NAMES}
    values.update(special)
    return values


@dataclass
class TrackingConfig:
    max_faces: int = option(2, "faces looked for per frame; the largest is followed, then the nearest")
    flip_average: bool = option(True, "also track the mirror image and average (symmetric, less noise, ~1.5x cost)")
    min_detection_confidence: float = option(0.5, "face detector score needed to start tracking a face")
    min_tracking_confidence: float = option(0.5, "landmark score below which the face is detected again")
    face_model: str | None = option(None, "3D face shape model (.npz); empty: the one shipped with live")


@dataclass
class SmoothingConfig:
    """One-Euro filter per parameter (Casiez et al. 2012). Pose in degrees, expressions in
    standard deviations; defaults measured on lp_d6 (bench/RESULTS.md)."""

    enabled: bool = option(True, "smooth the face parameters over time")
    min_cutoff: dict = option(_per_param(0.5, 1.0, blink_left=2.0, blink_right=2.0),
                              "cutoff in Hz when still, per parameter: lower = steadier, more lag")
    beta: dict = option(_per_param(0.1, 0.5, blink_left=1.0, blink_right=1.0),
                        "how fast the cutoff rises with speed, per parameter: higher = less lag in motion")
    d_cutoff: float = option(1.0, "cutoff in Hz of the speed estimate")


@dataclass
class RunConfig:
    avatar: str | None = option(None, "the avatar file to drive (`live avatar create`); empty: an offline demo "
                                      "avatar (the generator's mean face) with demo directions")
    directions: str | None = option(None, "direction matrix A (path or cached model name); empty: the one next "
                                          "to the avatar's generator if known, else demo directions")
    source: str = option("auto", "what drives the avatar: a camera index (0) or /dev/videoN, a video file, an "
                                 "image; auto: camera 0 if there is one, else a built-in synthetic motion")
    camera_size: list = option(["640", "480"], "requested camera frame size (width, height)")
    camera_fps: float = option(30.0, "requested camera frame rate")
    camera_mjpg: bool = option(True, "ask the camera for MJPG (higher frame rates over USB 2)")
    camera_retry_s: float = option(1.0, "seconds between attempts to reopen a camera that is busy or unplugged")
    fast: bool = option(False, "video files: run as fast as possible and drop nothing (default: paced at the "
                               "clip's own fps, dropping stale frames like a live camera)")
    loop: bool = option(False, "video files: start again at the end")
    absolute: bool = option(False, "take the driver's absolute pose (paper's cross-reenactment: dp = p - p_s) "
                                   "instead of copying motion relative to the neutral pose (dp = p - p_neutral)")
    profile: str | None = option(None, "calibration profile for the neutral pose (`live calibrate`); empty: "
                                       "the neutral pose is taken from the first second with a face")
    strength: float = option(1.0, "scale of the latent shift on the shifted W+ layers (1 = as fitted)")
    driven: list = option(["all"], "face parameters that drive the avatar: all, or names (yaw, pitch, roll, jaw, "
                                   "smile_left, ...); leave out those your generator cannot draw well")
    latent_smoothing: float = option(0.0, "extra smoothing of the final W+ code: 0 = off, toward 1 = heavier")
    lost_hold_s: float = option(0.3, "face lost: hold the last pose this long, then ease to neutral")
    lost_ease_s: float = option(0.5, "seconds to ease to neutral after a loss, and back when found again")
    frames: int = option(0, "stop after this many output frames; 0 runs until Ctrl-C (or the clip ends)")
    fps: float = option(25.0, "frame rate of file and virtual-camera output")
    output_size: list = option(["512", "512"], "virtual camera / window size (width, height); the avatar is "
                                               "resized and letterboxed into it")
    sinks: list = option(["window"], "where frames go: vcam, window, file:PATH.mp4, null (several allowed); "
                                     "file+driver:PATH.mp4 puts the driver beside the avatar")
    vcam_device: str | None = option(None, "virtual camera device (Linux: /dev/videoN of v4l2loopback); empty: "
                                           "the first one")
    hud: bool = option(True, "show fps and latency on the preview window")
    audio_delay: str = option("off", "microphone passthrough delayed to match the video: off, auto (the "
                                     "measured latency) or milliseconds")
    audio_input: str | None = option(None, "audio input device (name or index); empty: the default")
    audio_output: str | None = option(None, "audio output device, e.g. a virtual cable; empty: the default")
    stats_every_s: float = option(5.0, "log live statistics this often (0: only at the end)")


@dataclass
class LiveConfig:
    log: LogConfig = field(default_factory=LogConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    run: RunConfig = field(default_factory=RunConfig)


class ConfigError(ValueError):
    """A config file or override that does not fit the tree; the message names the key."""


def _coerce(value, hint, key: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return str(value)
    if hint is list or origin is list:
        if isinstance(value, str):
            return [v for v in value.split(",") if v]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [str(v) for v in value]
    return value


def _merge_map(current: dict, value, key: str) -> dict:
    """Maps (per-parameter values) are updated key by key; unknown keys are errors."""
    if not isinstance(value, dict):
        raise ConfigError(f"{key}: expected a mapping like {{yaw: 1.0}}, got {value!r}")
    out = dict(current)
    for k, v in value.items():
        if k not in current:
            raise ConfigError(f"unknown key {key}.{k}; valid keys: {', '.join(current)}")
        out[k] = _coerce(v, float, f"{key}.{k}")
    return out


def _merge(node, data: dict, prefix: str = "") -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(type(node))
    names = {f.name for f in dataclasses.fields(node)}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key {path!r}; valid keys here: {', '.join(sorted(names))}")
        current = getattr(node, key)
        if dataclasses.is_dataclass(current):
            _merge(current, value or {}, path + ".")
        elif isinstance(current, dict):
            setattr(node, key, _merge_map(current, value, path))
        else:
            setattr(node, key, _coerce(value, hints[key], path))


def load_config(*paths: str | Path | None, overrides: dict[str, object] | None = None) -> LiveConfig:
    """Defaults, then each YAML file that is given, then dotted overrides like {'engine.backend': 'eager'}."""
    cfg = LiveConfig()
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"{path} is not valid YAML: {e}") from None
        try:
            _merge(cfg, data)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        *parents, leaf = dotted.split(".")
        nested: dict = {leaf: value}
        for p in reversed(parents):
            nested = {p: nested}
        _merge(cfg, nested)
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg, comments: bool = True) -> str:
    """The config as YAML; with comments, each key is preceded by its documentation."""
    if not comments:
        return yaml.safe_dump(to_dict(cfg), sort_keys=False)
    lines: list[str] = []

    def emit(node, indent: int) -> None:
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            pad = "  " * indent
            if dataclasses.is_dataclass(value):
                lines.append(f"{pad}{f.name}:")
                emit(value, indent + 1)
                continue
            if "help" in f.metadata:
                lines.append(f"{pad}# {f.metadata['help']}")
            dumped = yaml.safe_dump({f.name: value}, default_flow_style=True, width=10_000, sort_keys=False).strip()
            lines.append(pad + dumped.removeprefix("{").removesuffix("}"))
    emit(cfg, 0)
    return "\n".join(lines) + "\n"
