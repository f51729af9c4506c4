"""Shared test fixtures. Data comes from ../shared (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from models.image_metrics import psnr as image_psnr

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIVE_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"

needs_shared = pytest.mark.skipif(
    not (FIXTURES / "face128.pt").is_file(),
    reason=f"needs the shared fixtures at {FIXTURES} (face128.pt); CI always has them, set LIVE_SHARED elsewhere")


def needs_cuda(test):
    """A CUDA-only test: marked `gpu` (python -m bench gpu runs them all) and skipped without a GPU."""
    return pytest.mark.gpu(pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")(test))


def needs_cupy(test):
    """A test of the CuPy kernels on a GPU: marked `gpu`, skipped without CuPy and a GPU."""
    from kernels.dispatch import cupy_available
    return pytest.mark.gpu(pytest.mark.skipif(not cupy_available(), reason="needs CuPy and a CUDA GPU")(test))


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = 2.0) -> float:
    """models.image_metrics.psnr with the range of what the tests compare most: generator images in [-1, 1]."""
    return image_psnr(a, b, data_range)


@pytest.fixture
def log_messages():
    """What loguru logs at WARNING and above during the test, one string per message."""
    from loguru import logger
    messages: list[str] = []
    handle = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    yield messages
    logger.remove(handle)


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own LIVE_HOME so nothing touches the real user dirs."""
    monkeypatch.setenv("LIVE_HOME", str(tmp_path / "live_home"))


@pytest.fixture(scope="session")
def fixture_path() -> Path:
    return FIXTURES / "face128.pt"


@pytest.fixture(scope="session")
def golden() -> dict[str, torch.Tensor]:
    data = np.load(FIXTURES / "face128_golden.npz")
    return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="session")
def face128(fixture_path):
    from models import load_generator
    return load_generator(fixture_path)


@pytest.fixture(scope="session")
def tracked_clip():
    """clip name -> (params [T, 15], landmarks [T, 478, 3], times [T]) with the default tracker and
    face model; each clip is tracked once per test session."""
    cache: dict = {}

    def get(name: str, max_frames: int | None = None):
        key = (name, max_frames)
        if key not in cache:
            from live.config import TrackingConfig
            from live.io.sources import iter_video_rgb
            from live.tracking.estimator import make_estimator
            est = make_estimator(TrackingConfig())
            rows, marks, times = [], [], []
            for k, t, frame in iter_video_rgb(SHARED / "media" / name, max_frames=max_frames):
                p = est(frame, k, t)
                rows.append(p.params)
                marks.append(p.landmarks if p.found else np.full((478, 3), np.nan, np.float32))
                times.append(t)
            est.close()
            cache[key] = (np.array(rows), np.array(marks), np.array(times))
        return cache[key]
    return get


@pytest.fixture(scope="session")
def small_directions(tmp_path_factory, fixture_path):
    """A direction matrix for the fixture from 24 samples: right format and plumbing, not quality."""
    import os

    from live.cli import main
    folder = tmp_path_factory.mktemp("directions")
    old = os.environ.get("LIVE_HOME")
    os.environ["LIVE_HOME"] = str(folder / "home")
    try:
        assert main(["directions", "fit", "-g", str(fixture_path), "-o", str(folder / "A.pt"), "--samples", "24"]) == 0
    finally:
        if old is None:
            os.environ.pop("LIVE_HOME", None)
        else:
            os.environ["LIVE_HOME"] = old
    return folder / "A.pt"


@pytest.fixture(scope="session")
def quick_avatar(tmp_path_factory, fixture_path):
    """An avatar of vox_source.png for the fixture generator, made in seconds (2 inversion steps, no tuning,
    no directions, so no identity limits): for plumbing, not looks."""
    from live.cli import main
    folder = tmp_path_factory.mktemp("avatar")
    old = os.environ.get("LIVE_HOME")
    os.environ["LIVE_HOME"] = str(folder / "home")
    try:
        assert main(["avatar", "create", str(SHARED / "media" / "vox_source.png"), "-g", str(fixture_path),
                     "-o", str(folder / "me.pt"), "--framing", "fixture", "--steps", "2", "--no-pti"]) == 0
    finally:
        if old is None:
            os.environ.pop("LIVE_HOME", None)
        else:
            os.environ["LIVE_HOME"] = old
    return folder / "me.pt"


def write_clip(src: Path, dst: Path, frames: int, repeat: int = 1, fps: float = 25.0) -> Path:
    """The first `frames` frames of video `src` as a new mp4, each written `repeat` times."""
    import cv2
    cap = cv2.VideoCapture(str(src))
    writer = None
    try:
        for _ in range(frames):
            ok, f = cap.read()
            if not ok:
                break
            if writer is None:
                writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, f.shape[1::-1])
            for _ in range(repeat):
                writer.write(f)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return dst
