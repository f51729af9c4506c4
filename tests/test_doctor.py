"""`live doctor`: each probe, present and absent, on a fake machine; and the real command here."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from live.cli import doctor_probes as d


class FakeSystem(d.System):
    def __init__(self, modules=None, commands=None, files=None, globs=None, system="Linux", display=False,
                 free=50e9, installed=(), cupy_problem=None):
        self.modules, self.commands, self.cupy_problem = modules or {}, commands or {}, cupy_problem
        self.files, self.globs = files or {}, globs or {}
        self._system, self._display, self._free, self.installed = system, display, free, set(installed)

    def module(self, name):
        return self.modules.get(name)

    def has_module(self, name):
        return name in self.installed

    def run(self, *cmd):
        return self.commands.get(cmd[0])

    def read(self, path):
        return self.files.get(path)

    def glob(self, pattern):
        return self.globs.get(pattern, [])

    def cupy_kernels_problem(self):
        return self.cupy_problem

    def system(self):
        return self._system

    def free_bytes(self, path):
        return self._free

    def display(self):
        return self._display


def _torch(cuda=None, available=False, arch=(8, 0), arch_list=("sm_80", "sm_90"), bf16=True):
    return SimpleNamespace(__version__="2.13.0", version=SimpleNamespace(cuda=cuda), cuda=SimpleNamespace(
        is_available=lambda: available, get_device_name=lambda i: "NVIDIA Test", get_device_capability=lambda i: arch,
        get_arch_list=lambda: list(arch_list), is_bf16_supported=lambda: bf16))


def _by_area(checks):
    return {c.area: c for c in checks}


def test_torch_and_gpu_every_case():
    assert d.probe_torch_and_gpu(FakeSystem())[0].ok is False                         # no torch at all
    cpu_with_card = _by_area(d.probe_torch_and_gpu(FakeSystem({"torch": _torch()}, {"nvidia-smi": "GPU 0: A100\n"})))
    assert cpu_with_card["gpu"].ok is None and "CPU-only build" in cpu_with_card["gpu"].detail
    assert "download.pytorch.org" in cpu_with_card["gpu"].fix
    no_card = _by_area(d.probe_torch_and_gpu(FakeSystem({"torch": _torch()})))
    assert no_card["gpu"].ok is None and "no NVIDIA GPU" in no_card["gpu"].detail
    old_card = _by_area(d.probe_torch_and_gpu(FakeSystem({"torch": _torch("12.4", True, arch=(3, 5))})))
    assert old_card["gpu"].ok is False and "sm_35" in old_card["gpu"].detail
    good = _by_area(d.probe_torch_and_gpu(FakeSystem({"torch": _torch("12.4", True, bf16=False)})))
    assert good["gpu"].ok is True and "bf16 no" in good["gpu"].detail
    no_driver = _by_area(d.probe_torch_and_gpu(FakeSystem({"torch": _torch("12.4", False)})))
    assert no_driver["gpu"].ok is None and "nvidia-smi" in no_driver["gpu"].fix


def test_kernels_and_optional_runtimes():
    cupy = SimpleNamespace(__version__="13.6", cuda=SimpleNamespace(runtime=SimpleNamespace(runtimeGetVersion=lambda: 12080)))
    mismatch = _by_area(d.probe_kernels(FakeSystem({"torch": _torch("13.0"), "cupy": cupy})))
    assert mismatch["cupy"].ok is None and "gpu-cuda13" in mismatch["cupy"].detail
    match = _by_area(d.probe_kernels(FakeSystem({"torch": _torch("12.4"), "cupy": cupy})))
    assert match["cupy"].ok is True
    on_gpu = {"torch": _torch("12.4", True), "cupy": cupy}
    assert _by_area(d.probe_kernels(FakeSystem(on_gpu)))["cupy"].ok is True
    no_nvrtc = _by_area(d.probe_kernels(FakeSystem(on_gpu, cupy_problem="RuntimeError: CuPy failed to load libnvrtc")))
    assert no_nvrtc["cupy"].ok is None and "cannot build or run the kernels" in no_nvrtc["cupy"].detail
    assert "libnvrtc" in no_nvrtc["cupy"].detail and "torch ops" in no_nvrtc["cupy"].detail
    ort = SimpleNamespace(__version__="1.20", get_available_providers=lambda: ["CPUExecutionProvider"])
    present = _by_area(d.probe_kernels(FakeSystem({"torch": _torch(), "onnxruntime": ort})))
    assert present["onnxruntime"].ok is True and "CPUExecutionProvider" in present["onnxruntime"].detail
    assert present["tensorrt"].ok is None and "live[tensorrt]" in present["tensorrt"].fix


def test_tracking_models(tmp_path):
    assert d.probe_tracking(FakeSystem())[0].ok is False
    root = tmp_path / "mediapipe"
    mp = SimpleNamespace(__version__="0.10.22", __file__=str(root / "__init__.py"))
    stripped = d.probe_tracking(FakeSystem({"mediapipe": mp}))
    assert stripped[0].ok is False and "0.10.21" in stripped[0].fix           # a release without bundled models
    for name in ("face_landmark/face_landmark_with_attention.tflite", "face_detection/face_detection_short_range.tflite"):
        (root / "modules" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "modules" / name).write_bytes(b"x")
    ok = _by_area(d.probe_tracking(FakeSystem({"mediapipe": mp, "dlib": object()}, installed={"face_recognition_models"})))
    assert ok["tracking"].ok is True and ok["identity"].ok is True
    assert _by_area(d.probe_tracking(FakeSystem({"mediapipe": mp})))["identity"].ok is None


def test_cameras_and_virtual_cameras():
    none = _by_area(d.probe_cameras(FakeSystem(commands={"mokutil": "SecureBoot enabled\n"})))
    assert none["camera"].ok is None and none["virtual camera"].ok is None
    assert "modprobe v4l2loopback" in none["virtual camera"].fix and "Secure Boot" in none["virtual camera"].fix
    machine = FakeSystem(globs={"/dev/video*": ["/dev/video0", "/dev/video12"]},
                         files={"/sys/class/video4linux/video0/name": "HD Webcam\n",
                                "/sys/class/video4linux/video12/name": "live\n",
                                "/sys/module/v4l2loopback/parameters/exclusive_caps": "N\n"})
    checks = d.probe_cameras(machine)
    assert checks[0].ok is True and "HD Webcam" in checks[0].detail
    notes = [c for c in checks if c.area == "virtual camera"]
    assert notes[0].ok is True and any("exclusive_caps" in c.detail for c in notes)
    assert any("above 9" in c.detail for c in notes)
    assert d.probe_cameras(FakeSystem(system="Windows"))[0].ok is None


def test_audio_display_disk():
    assert d.probe_audio(FakeSystem())[0].ok is None
    sd = SimpleNamespace(query_devices=lambda: [{"max_input_channels": 1, "max_output_channels": 0},
                                                {"max_input_channels": 0, "max_output_channels": 2}])
    assert d.probe_audio(FakeSystem({"sounddevice": sd}))[0].ok is True
    files = _by_area(d.probe_files(FakeSystem(display=False, free=1e9)))
    assert files["display"].ok is None and files["disk"].ok is None and files["models"].ok is True


def test_a_broken_probe_does_not_hide_the_others(monkeypatch):
    def broken(s):
        raise RuntimeError("boom")
    monkeypatch.setattr(d, "PROBES", (broken, d.probe_cpu))
    checks = d.diagnose(FakeSystem())
    assert checks[0].detail == "could not check: boom" and checks[1].area == "cpu"


def test_doctor_here_names_what_is_missing_and_exits_0(tmp_path):
    """Acceptance: on this machine it exits 0 and names the missing GPU, virtual camera, camera and audio, each
    with its fix."""
    result = subprocess.run([sys.executable, "-m", "live", "doctor", "--json"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path, env={**__import__("os").environ, "LIVE_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    reported = json.loads(result.stdout)
    assert not [c for c in reported if c["detail"].startswith("could not check")], "a probe failed"
    checks = {c["area"]: c for c in reported}
    # what a reader sees named in each missing item's line (any of these words; the probes word it by cause)
    names = {"gpu": ("GPU",), "virtual camera": ("v4l2loopback", "video devices"), "camera": ("camera",),
             "audio": ("audio", "device")}
    for area, words in names.items():
        if checks[area]["ok"] is not True:
            assert any(word in checks[area]["detail"] for word in words), checks[area]
            assert checks[area]["fix"], area
    assert checks["tracking"]["ok"] is True
