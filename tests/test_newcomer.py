"""A newcomer's first hour: files at the right speed, sinks that say when frames go nowhere, a quiet run."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import cv2
import pytest

from live.cli import main
from tests.conftest import SHARED, needs_shared, write_clip


def _video(path):
    cap = cv2.VideoCapture(str(path))
    return cap.get(cv2.CAP_PROP_FPS), int(cap.get(cv2.CAP_PROP_FRAME_COUNT))


@needs_shared
def test_files_play_at_the_sources_speed(tmp_path):
    clip = write_clip(SHARED / "media" / "lp_d3.mp4", tmp_path / "clip.mp4", 30, fps=30.0)
    out = tmp_path / "o.mp4"
    assert main(["run", "--source", str(clip), "--fast", "--sink", f"file:{out}", "--size", "64x64"]) == 0
    assert _video(out) == (30.0, 30)                          # was 25 fps whatever the source
    # paced, with a renderer slower than the clip: dropped frames are held, so the file lasts as long as the clip
    slow = tmp_path / "slow.mp4"
    assert main(["run", "-g", "random", "--arch", "fixture128", "--backend", "eager", "--precision", "fp32",
                 "--source", str(clip), "--sink", f"file:{slow}", "--size", "64x64"]) == 0
    fps, frames = _video(slow)
    assert fps == 30.0 and 27 <= frames <= 31


def test_demo_file_frame_rate_is_what_it_says(tmp_path):
    out = tmp_path / "demo.mp4"
    assert main(["run", "--frames", "20", "--sink", f"file:{out}", "--size", "64x64"]) == 0
    assert _video(out) == (25.0, 20)                          # the synthetic motion runs at 25 fps


def test_a_virtual_camera_that_cannot_open_on_a_headless_machine_stops_the_run(monkeypatch, capsys):
    import pyvirtualcam
    monkeypatch.setattr(pyvirtualcam, "Camera", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no device")))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["run", "--sink", "vcam", "--frames", "2"]) == 2
    err = capsys.readouterr().err
    assert "no frame would go anywhere" in err and ("modprobe v4l2loopback" in err or "OBS" in err)
    assert main(["run", "--sink", "vcam,null", "--frames", "2", "--size", "32x32"]) == 0    # null: knowingly nowhere


@needs_shared
def test_a_normal_run_prints_only_our_messages(tmp_path):
    """No line from mediapipe, absl or OpenCV, none of our DEBUG lines; -v shows them."""
    clip = write_clip(SHARED / "media" / "lp_d3.mp4", tmp_path / "clip.mp4", 10)
    env = {**os.environ, "LIVE_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "live", "run", "--source", str(clip), "--frames", "5", "--sink", "null"]
    quiet = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    lines = [line for line in quiet.stderr.splitlines() if line.strip()]
    ours = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ")
    assert lines and all(ours.match(line) for line in lines), quiet.stderr
    loud = subprocess.run(cmd[:3] + ["-v"] + cmd[3:], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert loud.returncode == 0 and ("W0000" in loud.stderr or "DEBUG" in loud.stderr)


@pytest.mark.parametrize("flag", ["--help"])
def test_help_words_are_the_users(flag, capsys):
    """Help that says what things are: no 'matrix a', no 'see docs'."""
    with pytest.raises(SystemExit):
        main(["directions", "fit", flag])
    out = capsys.readouterr().out
    assert "see docs" not in out and re.search(r"\bmatrix a\b", out) is None
