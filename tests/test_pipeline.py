"""The live loop: hand-offs, face-loss easing, sinks and their fallbacks, audio, and full runs."""

import json
import threading
import time

import cv2
import numpy as np
import pytest

from live.cli import main
from live.io.audio import DelayLine, parse_delay, start_audio
from live.io.sinks import (
    SinkError,
    WindowSink,
    open_sinks,
    side_by_side,
    vcam_setup_hint,
)
from live.pipeline.motion import LossEaser
from live.pipeline.slots import Closed, LatestSlot
from tests.conftest import SHARED, needs_shared, write_clip


class Item:
    def __init__(self, index):
        self.index = index


def test_latest_slot_drops_stale_items_and_counts_them():
    slot = LatestSlot("x")
    for k in range(5):
        slot.put(Item(k))
    assert slot.get().index == 4 and slot.dropped == 4
    slot.close()
    with pytest.raises(Closed):
        slot.get()
    with pytest.raises(Closed):
        slot.put(Item(9))


def test_closing_hands_on_the_last_item_and_aborting_counts_it():
    done = LatestSlot("x")
    done.put(Item(1))
    done.close()                       # the producer finished: the consumer still gets the last item
    assert done.get().index == 1 and done.dropped_at_close == 0
    stopped = LatestSlot("y")
    stopped.put(Item(2))
    stopped.abort()                    # the run stopped: the item is lost, and counted
    assert stopped.dropped_at_close == 1
    with pytest.raises(Closed):
        stopped.get()


def test_blocking_slot_drops_nothing():
    slot = LatestSlot("x", block=True)
    got = []

    def consume():
        try:
            while True:
                got.append(slot.get().index)
                time.sleep(0.002)
        except Closed:
            pass
    t = threading.Thread(target=consume)
    t.start()
    for k in range(50):
        slot.put(Item(k))
    while slot._full:
        time.sleep(0.001)
    slot.close()
    t.join()
    assert got == list(range(50)) and slot.dropped == 0


def test_face_loss_holds_then_eases_to_neutral_and_back():
    e = LossEaser(hold_s=0.3, ease_s=0.5)
    assert e.update(True, 0.0) == 0.0          # first frame: starts easing in
    assert e.update(True, 0.6) == 1.0
    assert e.update(False, 0.7) == 1.0         # lost: hold
    assert e.update(False, 0.95) == 1.0
    mid = e.update(False, 1.25)                # easing out
    assert 0.0 < mid < 1.0
    assert e.update(False, 1.6) == 0.0         # neutral
    back = e.update(True, 2.0)
    assert back == 0.0 and 0 < e.update(True, 2.25) < 1 and e.update(True, 2.6) == 1.0


def test_side_by_side_and_window_headless(monkeypatch):
    frame = np.zeros((64, 64, 3), np.uint8)
    assert side_by_side(np.zeros((480, 640, 3), np.uint8), frame).shape == (64, 64 + 84, 3)
    assert side_by_side(None, frame).shape == (64, 128, 3)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    w = WindowSink()
    w.write(frame)
    assert not w.enabled and w.frames_written == 1


def test_missing_virtual_camera_says_how_and_falls_back(caplog, monkeypatch):
    import pyvirtualcam
    monkeypatch.setattr(pyvirtualcam, "Camera", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no device")))
    sinks = open_sinks(["vcam", "null"], 25, (64, 64))
    assert sorted(s.name for s in sinks) == ["null", "window"]
    assert "modprobe v4l2loopback" in vcam_setup_hint() or "OBS" in vcam_setup_hint()
    with pytest.raises(SinkError, match="unknown sink"):
        open_sinks(["hologram"], 25, (64, 64))


def test_real_virtual_camera_backend_reports_no_device():
    """pyvirtualcam itself, no mock: on this machine there is no v4l2loopback device."""
    from live.io.sinks import VirtualCameraSink
    try:
        sink = VirtualCameraSink((64, 64), 25)
    except SinkError as e:
        assert "virtual camera" in str(e)
    else:  # a machine with a loopback device: it must take frames
        sink.write(np.zeros((64, 64, 3), np.uint8))
        sink.close()


def test_audio_delay_line_and_missing_devices():
    line = DelayLine(1, 100)
    line.set_delay(3)
    out = line.process(np.arange(1, 8, dtype=np.float32)[:, None])
    assert out[:, 0].tolist() == [0, 0, 0, 1, 2, 3, 4]
    assert parse_delay("off") is None and parse_delay("auto") == -1 and parse_delay("120") == 120
    with pytest.raises(ValueError):
        parse_delay("soon")
    assert start_audio("80") is None  # no audio devices here: a message, and the video goes on


def test_demo_run_accounts_for_every_frame(tmp_path):
    stats = tmp_path / "s.json"
    assert main(["run", "-g", "random", "--arch", "fixture128", "--frames", "8", "--sink", "null", "--size", "64x64",
                 "--stats", str(stats)]) == 0
    r = json.loads(stats.read_text())
    assert r["written"] == 8 and r["frames_in"] == r["written"] + r["dropped"]
    assert {"track", "render", "sinks", "added"} <= set(r["stages"])


@needs_shared
def test_avatar_driven_by_a_clip(tmp_path, fixture_path, small_directions):
    me = tmp_path / "me.pt"
    assert main(["avatar", "create", str(SHARED / "media" / "vox_source.png"), "-g", str(fixture_path),
                 "-d", str(small_directions), "-o", str(me), "--framing", "fixture", "--steps", "20",
                 "--no-pti"]) == 0
    # a short clip of the driver: the first 40 frames of lp_d3
    clip = write_clip(SHARED / "media" / "lp_d3.mp4", tmp_path / "clip.mp4", 40)
    out, stats = tmp_path / "out.mp4", tmp_path / "s.json"
    # as users are told to run it: the avatar carries its generator's name and its direction matrix
    assert main(["run", "-a", str(me), "--source", str(clip), "--fast",
                 "--sink", f"file+driver:{out},null", "--size", "128x128", "--stats", str(stats),
                 "--watch-identity", "4"]) == 0
    r = json.loads(stats.read_text())
    assert r["frames_in"] == 40 and r["written"] == 40 and r["dropped"] == 0 and r["found_frames"] == 40
    watched = r["identity"]   # every 4th frame offered; the watch takes what it can without slowing the loop
    assert 1 <= watched["checks"] <= 10 and watched["faces"] <= watched["checks"]
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 40
    ok, frame = cap.read()
    assert ok and frame.shape[0] == 128 and frame.shape[1] > 128  # driver beside the avatar
    # paced like a live camera: frames the renderer cannot keep up with are dropped, and counted
    assert main(["run", "-a", str(me), "-d", str(small_directions), "--source", str(clip),
                 "--sink", "null", "--size", "64x64", "--stats", str(stats)]) == 0
    r = json.loads(stats.read_text())
    assert r["frames_in"] == 40 and r["written"] + r["dropped"] == 40


@needs_shared
def test_run_refuses_an_avatar_for_another_generator(tmp_path, small_directions):
    assert main(["run", "-a", str(tmp_path / "nothing.pt"), "-d", str(small_directions), "--frames", "1",
                 "--sink", "null"]) == 2


def test_missing_camera_is_a_clear_error_after_retries(capsys, tmp_path):
    # /dev/video9 does not exist here: three attempts, then a message saying what to check
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run:\n  camera_retry_s: 0.1\n")
    assert main(["--config", str(cfg), "run", "-g", "random", "--arch", "fixture128", "--source", "/dev/video9", "--frames", "2",
                 "--sink", "null", "--size", "64x64"]) == 2
    assert "could not be opened" in capsys.readouterr().err
