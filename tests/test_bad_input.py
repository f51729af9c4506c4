"""Foreign or damaged files and missing devices, as a new user meets them: one clear line each, exit 2, no
traceback, no third-party noise (the `live` command as users run it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SHARED, needs_shared

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("Traceback", "moov atom", "Camera index out of range", "[ERROR:", "W0000", "weights_only", "KeyError")


def live(*args: str, home: Path, without: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """`live ARGS` as a user runs it, with its own LIVE_HOME, the environment variables `without` unset."""
    import os
    env = {k: v for k, v in {**os.environ, "LIVE_HOME": str(home)}.items() if k not in without}
    return subprocess.run([sys.executable, "-m", "live", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def _one_clear_error(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, done.stderr
    assert not [n for n in NOISE if n in done.stderr], done.stderr
    for word in words:
        assert word in errors[0], errors[0]
    return errors[0]


FOREIGN = {"notes.txt": b"# my notes\nbuy milk\n", "empty.pt": b"", "random.pt": bytes(range(256)) * 40,
           "photo.pt": b"\x89PNG\r\n\x1a\n" + b"\x00" * 200}


@pytest.mark.parametrize("name", [n if n in ("notes.txt", "empty.pt") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in sorted(FOREIGN)])
def test_a_foreign_file_given_as_an_avatar_is_one_clear_line(name, tmp_path):
    path = tmp_path / name
    path.write_bytes(FOREIGN[name])
    expected = {"notes.txt": "it is text (it starts with '# my notes')", "empty.pt": "it is empty",
                "photo.pt": "is a photo, not an avatar: make one from it with `live avatar create"}.get(
        name, "some other kind of file")
    also = () if name == "photo.pt" else ("not a torch file",)
    line = _one_clear_error(live("avatar", "show", str(path), home=tmp_path), expected, *also)
    assert "pickled" not in line
    if name == "notes.txt":       # the same line where the loop loads it
        _one_clear_error(live("run", "-a", str(path), "--frames", "1", "--sink", "null", home=tmp_path), expected)


@needs_shared
def test_a_truncated_torch_file_says_so_in_whole_words(tmp_path):
    cut = tmp_path / "cut.pt"
    cut.write_bytes((SHARED / "fixtures" / "face128.pt").read_bytes()[:4000])
    line = _one_clear_error(live("avatar", "show", str(cut), home=tmp_path), "truncated or corrupt")
    reason = line.split("corrupt (", 1)[1].split(")", 1)[0]
    assert reason.endswith((".", "...")), reason          # a whole sentence, or words and an ellipsis


@pytest.mark.slow
@needs_shared
def test_a_damaged_video_and_a_missing_camera_say_it_without_ffmpeg_or_opencv_noise(tmp_path):
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes((SHARED / "media" / "lp_d0.mp4").read_bytes()[:20000])
    _one_clear_error(live("run", "--source", str(damaged), "--frames", "2", "--sink", "null", home=tmp_path),
                     "damaged")
    _one_clear_error(live("run", "--source", "7", "--frames", "2", "--sink", "null", "--camera-retry-s", "0.1",
                          home=tmp_path), "camera 7 could not be opened")


@needs_shared
@pytest.mark.parametrize("sink", ["window", pytest.param("vcam", marks=pytest.mark.slow)])
def test_no_sink_that_delivers_stops_before_loading_the_tracker_without_a_misleading_line(sink, tmp_path):
    """Headless, with no virtual camera device here: the run stops at once, before the tracker loads (whose
    native logs would follow the error), and says nothing about frames going elsewhere."""
    if sink == "vcam" and Path("/dev/video0").exists():
        pytest.skip("this machine has a video device: the virtual camera may open")
    done = live("run", "--sink", sink, "--frames", "2", "--source", str(SHARED / "media" / "lp_d0.mp4"), home=tmp_path,
                without=("DISPLAY", "WAYLAND_DISPLAY"))
    _one_clear_error(done, "no frame would go anywhere")
    assert "frames still go to the other sinks" not in done.stderr and "frames go to" not in done.stderr
