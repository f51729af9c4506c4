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

