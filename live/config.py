"""The configuration tree: typed dataclasses with documented defaults.

Precedence, lowest first: the defaults below, the user's config file (`live config path`), a
file given with --config, command-line flags (live/config_files.py merges them). Every field's
help is its documentation: `live config show` prints it as YAML comments and `live run --help`
shows it beside the flag that sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from live.options import ConfigError, option, parse_size
from models.face.landmarks import EXPRESSION_NAMES, POSE_NAMES

__all__ = ["ConfigError", "EngineConfig", "GeneratorConfig", "LiveConfig", "LogConfig", "RunConfig",
           "ServeConfig", "SmoothingConfig", "TrackingConfig"]


@dataclass
class LogConfig:
    level: str = option("INFO", "log level: TRACE, DEBUG, INFO, WARNING, ERROR", name="log-level")
    file: str | None = option(None, "also write the log to this file (rotated at 10 MB)", name="log-file")
    verbose: bool = option(False, "debug messages, and the native libraries' own logs (mediapipe, OpenCV) that a "
                           "normal run hides", flags=("-v",))


@dataclass
class GeneratorConfig:
    path: str | None = option(
        None, "generator weights (the StyleGAN2 renderer): a checkpoint of the reference trainer (.pt), a "
              "safetensors file, an NVIDIA .pkl or a cached model name; `random`: random weights of `arch`, which "
              "run the whole loop but draw no face (benchmarks). Empty, with no avatar: the bundled demo painting, "
              "mesh-warped", name="generator", flags=("-g",), metavar="PATH")
    arch: str = option("vox256", "architecture for random weights: vox256 (the paper's 256 px, channel "
                                 "multiplier 1), 256-cm2, 1024-cm2 (FFHQ config-f) or fixture128",
                       choices=("vox256", "256-cm2", "1024-cm2", "fixture128"))
    seed: int = option(0, "seed of the random weights when no path is given")
    truncation: float = option(1.0, "truncation psi toward the mean code (1 = none, 0.7 = typical)")


@dataclass
class EngineConfig:
    backend: str = option("auto", "synthesis backend: eager, compiled (torch.compile), tensorrt, openvino, "
                                  "onnxruntime; auto: the fastest installed for the device (README: engines)",
                          choices=("auto", "eager", "compiled", "tensorrt", "openvino", "onnxruntime"))
    precision: str = option("auto", "fp32, fp16 or bf16 (mixed: bfloat16 convolutions, fp32 weights); auto = fp16 on CUDA, bf16 on CPUs with AVX512-BF16/AMX, else fp32",
                            choices=("auto", "fp32", "fp16", "bf16"))
    device: str = option("auto", "auto, cpu, cuda or cuda:N")
    batch: int = option(1, "images per run; static backends are built for exactly this batch size")
    torch_compile: bool = option(True, "compiled backend: run torch.compile (inductor) on the synthesis graph")
    compile_mode: str = option("default", "torch.compile mode: default (fast start) or max-autotune-no-cudagraphs "
                                          "(tunes kernels for minutes once, cached by inductor afterwards)")
    cuda_graph: bool = option(True, "compiled backend on CUDA: one CUDA graph per frame (latent blend, synthesis "
                                    "and post-process in `live run`; synthesis alone in benchmarks)")
    warmup_iters: int = option(3, "runs before capture/timing so kernels are chosen and caches filled")
    cache_dir: str | None = option(None, "where built engines (TensorRT, OpenVINO, ONNX) are kept; empty: "
                                         "<user cache>/engines")
    openvino_device: str = option("auto", "openvino backend: CPU, GPU (Intel graphics), GPU.1, NPU, or AUTO "
                                          "(OpenVINO's own choice); auto: GPU where OpenVINO sees one, else CPU")
    providers: list = option(["auto"], "onnxruntime backend: execution providers, preferred first: tensorrt, "
                                       "cuda, dml (DirectML), coreml, openvino, cpu (or full names); auto: every "
                                       "installed one in that order but tensorrt (minutes to build: name it)", metavar="NAMES")
    threads: int = option(0, "CPU threads of the openvino and onnxruntime backends; 0: the runtime's "
                             "default, every physical core (in the loop, faster than leaving one to "
                             "tracking: bench/RESULTS.md)")


def _per_param(pose: float, expression: float, **special: float) -> dict:
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

    enabled: bool = option(True, "smooth the face parameters over time", name="smoothing")
    min_cutoff: dict = option(_per_param(0.5, 1.0, blink_left=2.0, blink_right=2.0),
                              "cutoff in Hz when still, per parameter: lower = steadier, more lag")
    beta: dict = option(_per_param(0.1, 0.5, blink_left=1.0, blink_right=1.0),
                        "how fast the cutoff rises with speed, per parameter: higher = less lag in motion")
    d_cutoff: float = option(1.0, "cutoff in Hz of the speed estimate")


@dataclass
class RunConfig:
    avatar: str | None = option(None, "the avatar file to drive (`live avatar create`); empty: the bundled demo "
                                      "painting, mesh-warped (with --generator: a random face of that generator)",
                                flags=("-a",), metavar="ME.pt")
    directions: str | None = option(None, "direction matrix A (path or cached model name); empty: the one next "
                                          "to the avatar's generator if known, else demo directions",
                                    flags=("-d",), metavar="A.pt")
    source: str = option("auto", "what drives the avatar: a camera index (0) or /dev/videoN, a video file, an "
                                 "image, a face-parameter track from `live track SRC --out CSV` (replayed, no tracking); "
                                 "auto: camera 0 if there is one, else a built-in synthetic motion",
                         flags=("-s",), metavar="SRC")
    camera_size: list = option(["640", "480"], "requested camera frame size, WxH", parse=parse_size,
                               metavar="WxH")
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
    adapt: bool = option(True, "when tracking or drawing cannot keep up with the source (a slow CPU), make it "
                               "cheaper step by step: flip averaging off, then tracking alternate frames with the "
                               "parameters predicted between; a warp avatar's frame drawn at three quarters, then half "
                               "the output's size; each step is logged and reported")
    gaze: str = option("follow", "warp avatars' eyes: follow (they look where yours do, relative to your neutral "
                                 "gaze) or camera (they keep the photo's gaze: eye contact in a call)",
                       choices=("follow", "camera"))
    mouth: str = option("driver", "warp avatars whose photo has its mouth closed: what shows when the mouth opens: "
                                  "driver (the inside of your own mouth from the camera, in the photo's light; drawn "
                                  "where the camera's mouth is too small, and with no camera) or drawn (teeth, tongue "
                                  "and throat drawn in the photo's colours)", choices=("driver", "drawn"))
    strength: float = option(1.0, "StyleGAN2 avatars: scale of the latent shift on the shifted W+ layers (1 = as "
                                  "fitted)")
    driven: list = option(["all"], "face parameters that drive the avatar: all, or names (yaw, pitch, roll, jaw, "
                                   "smile_left, ...); leave out those your generator cannot draw well", name="drive",
                           metavar="NAMES")
    latent_smoothing: float = option(0.0, "StyleGAN2 avatars: extra smoothing of the final W+ code: 0 = off, toward "
                                          "1 = heavier")
    lost_hold_s: float = option(0.3, "face lost: hold the last pose this long, then ease to neutral")
    lost_ease_s: float = option(0.5, "seconds to ease to neutral after a loss, and back when found again")
    frames: int = option(0, "stop after this many output frames; 0 runs until Ctrl-C (or the clip ends)",
                         metavar="N")
    fps: float = option(0.0, "frame rate of file and virtual-camera output; 0: the source's (a clip's own, the "
                        "camera's, 25 for the synthetic motion and photos)")
    output_size: list = option(["512", "512"], "virtual camera / window size (width, height); the avatar is "
                                               "resized and letterboxed into it", name="size", parse=parse_size,
                               metavar="WxH")
    sinks: list = option(["window"], "where frames go: vcam, window, file:PATH.mp4, null (several allowed); "
                                     "file+driver:PATH.mp4 puts the driver beside the avatar", name="sink", metavar="SPEC")
    vcam_device: str | None = option(None, "virtual camera device (Linux: /dev/videoN of v4l2loopback); empty: "
                                           "the first one")
    hud: bool = option(True, "show fps and latency on the preview window")
    audio_delay: str = option("off", "microphone passthrough delayed to match the video: off, auto (the "
                                     "measured latency) or milliseconds", metavar="auto|MS|off")
    audio_input: str | None = option(None, "audio input device (name or index); empty: the default")
    audio_output: str | None = option(None, "audio output device, e.g. a virtual cable; empty: the default")
    stats_every_s: float = option(5.0, "log live statistics this often (0: only at the end)")
    identity_guard: bool = option(True, "ease the driver's changes into the avatar's identity limits (how far each "
                                  "direction moves the face before it becomes someone else; measured at `live "
                                  "avatar create -d`), so strong expressions do not turn the avatar into a stranger")
    watch_identity: int = option(0, "every N output frames, compare the face with the avatar's photo (CSIM of dlib "
                                 "identity embeddings, on a thread of its own) and warn when it stops being the "
                                 "avatar (dlib distance >= 0.6); 0: off", metavar="N")


@dataclass
class ServeConfig:
    host: str = option("127.0.0.1", "address to serve on. Anything but this machine (127.0.0.1, localhost, ::1) "
                                    "needs HTTPS (--cert/--key or --self-signed) and a token in the URL, because "
                                    "browsers give the camera only to secure pages")
    port: int = option(8189, "port (0: any free one; the URL is printed)")
    avatars: list = option([], "more avatar files a page may pick (after --avatar, the default); none: --avatar, or "
                               "the bundled demo painting", metavar="ME.pt")
    max_connections: int = option(0, "browsers served at once, one more is refused with a message; 0: one per CPU "
                                     "core (each runs its own tracker and renderer: about a core for the mesh warp at "
                                     "30 fps; bench/RESULTS.md has 1, 2 and 4 streams on two cores)")
    max_uploads: int = option(50, "uploaded photos' avatars kept (in the user data dir, listed again after a "
                                  "restart); the oldest go first")
    uploads: bool = option(True, "let a page upload a photo that becomes a warp avatar for every connection")
    max_upload_mb: float = option(10.0, "largest photo upload, MB")
    cert: str | None = option(None, "TLS certificate (PEM) for HTTPS", metavar="PEM")
    key: str | None = option(None, "its private key (PEM)", metavar="PEM")
    self_signed: bool = option(False, "make a self-signed certificate for HTTPS (kept in the user config dir; its "
                                      "SHA-256 fingerprint is printed to check in the browser)")
    token: str | None = option(None, "the URL's access token for a remote server; empty: a new random one per start")


@dataclass
class LiveConfig:
    log: LogConfig = field(default_factory=LogConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)
    run: RunConfig = field(default_factory=RunConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
