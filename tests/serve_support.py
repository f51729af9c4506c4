"""What the `live serve` tests share beyond bench/browser_session.py: skips with the install command."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.browser_session import CHROMIUM_INSTALL, chromium_paths
from tests.conftest import SHARED

needs_chromium = pytest.mark.skipif(chromium_paths() is None,
                                    reason=f"needs Chromium and its driver: {CHROMIUM_INSTALL}; CI installs them")


def clip(name: str = "lp_d3.mp4") -> Path:
    path = SHARED / "media" / name
    if not path.is_file():
        pytest.skip(f"needs {path} (the shared media)")
    return path


def turned_face_clip(path: Path, size: tuple[int, int], frames: int) -> Path:
    """A still clip of Vermeer's painting (the project's own copy: a face turned 34 degrees) at `size` (w, h): a
    camera whose first second gives an askew neutral pose."""
    import cv2

    from live.io.sources import read_image_rgb
    from live.pipeline.scene import DEMO_PHOTO
    photo = cv2.resize(read_image_rgb(DEMO_PHOTO), size)[:, :, ::-1]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, size)
    for _ in range(frames):
        writer.write(photo)
    writer.release()
    return path
