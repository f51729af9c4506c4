"""The live loop: hand-offs, face-loss easing, sinks and their fallbacks, audio, and full runs."""

import importlib.abc
import json
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from live.avatar import Avatar
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
from models.image_metrics import psnr
from tests.conftest import SHARED, needs_shared, write_clip


def _read_frames(cap) -> list[np.ndarray]:
    frames = []
    while (got := cap.read())[0]:
        frames.append(got[1])
    cap.release()
    return frames


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
    with pytest.raises(SinkError, match="unknown sink"):
        open_sinks(["hologram"], 25, (64, 64))


@pytest.mark.parametrize("system, says, not_says", [
    ("Linux", "modprobe v4l2loopback", "OBS Studio"),
    ("Windows", "OBS Studio", "modprobe"),
    ("Darwin", "OBS Studio", "modprobe"),
    ("FreeBSD", "no virtual camera backend for FreeBSD", "OBS Studio"),
])
def test_virtual_camera_hint_is_the_one_for_this_system(monkeypatch, system, says, not_says):
    monkeypatch.setattr("platform.system", lambda: system)
    hint = vcam_setup_hint()
    assert says in hint and not_says not in hint


@pytest.mark.skipif(sys.platform != "linux", reason="the v4l2loopback backend is Linux's")
def test_real_virtual_camera_backend():
    """pyvirtualcam itself, no mock. Which outcome is right is read from the machine, not from the sink: without
    the v4l2loopback module loaded it must refuse with the set-up hint; with it, it must take frames."""
    from live.io.sinks import VirtualCameraSink
    if not Path("/sys/module/v4l2loopback").is_dir():
        with pytest.raises(SinkError, match="Install and load v4l2loopback") as refused:
            VirtualCameraSink((64, 64), 25)
        assert "pyvirtualcam:" in str(refused.value)        # and what the backend itself said
    else:
        sink = VirtualCameraSink((64, 64), 25)
        sink.write(np.zeros((64, 64, 3), np.uint8))
        sink.close()
        assert sink.frames_written == 1


def test_audio_delay_line_and_delay_specs():
    line = DelayLine(1, 100)
    line.set_delay(3)
    out = line.process(np.arange(1, 8, dtype=np.float32)[:, None])
    assert out[:, 0].tolist() == [0, 0, 0, 1, 2, 3, 4]
    assert parse_delay("off") is None and parse_delay("auto") == -1 and parse_delay("120") == 120
    with pytest.raises(ValueError):
        parse_delay("soon")


class FakeSoundDevice:
    """The sounddevice module as a machine with these `devices` shows it (an exception: listing them fails);
    `stream_error`: opening the stream fails with it."""
    MIC = {"max_input_channels": 1, "max_output_channels": 0}
    SPEAKER = {"max_input_channels": 0, "max_output_channels": 2}

    def __init__(self, devices, stream_error: Exception | None = None):
        self.devices, self.stream_error, self.streams = devices, stream_error, []

    def query_devices(self):
        if isinstance(self.devices, Exception):
            raise self.devices
        return self.devices

    def Stream(self, **kwargs):
        if self.stream_error is not None:
            raise self.stream_error
        self.streams.append(SimpleNamespace(kwargs=kwargs, started=False, closed=False))
        stream = self.streams[-1]
        stream.start = lambda: setattr(stream, "started", True)
        stream.stop = lambda: None
        stream.close = lambda: setattr(stream, "closed", True)
        return stream


class NoPortAudio(importlib.abc.MetaPathFinder):
    """`import sounddevice` as it fails where the PortAudio library is missing."""
    def find_spec(self, name, path, target=None):
        if name == "sounddevice":
            raise OSError("PortAudio library not found")
        return None


@pytest.mark.parametrize("sounddevice, cause", [
    (None, "audio needs PortAudio (PortAudio library not found); Debian/Ubuntu: sudo apt install libportaudio2"),
    (FakeSoundDevice(RuntimeError("no host API")), "cannot list audio devices (no host API)"),
    (FakeSoundDevice([FakeSoundDevice.SPEAKER]), "no microphone and output device found"),
    (FakeSoundDevice([FakeSoundDevice.MIC]), "no microphone and output device found"),
    (FakeSoundDevice([FakeSoundDevice.MIC, FakeSoundDevice.SPEAKER], RuntimeError("device busy")),
     "cannot open the audio devices (device busy)"),
], ids=["no-portaudio", "cannot-list", "no-microphone", "no-output", "cannot-open"])
def test_audio_that_cannot_start_says_why_and_the_video_goes_on(monkeypatch, log_messages, sounddevice, cause):
    if sounddevice is None:
        monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
        monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    else:
        monkeypatch.setitem(sys.modules, "sounddevice", sounddevice)
    assert start_audio("80") is None
    said = [m for m in log_messages if m.startswith("audio passthrough off: ")]
    assert len(said) == 1 and said[0].startswith(f"audio passthrough off: {cause}"), log_messages
    assert said[0].endswith("The video goes on.")


def test_audio_passthrough_runs_with_the_delay_asked(monkeypatch, log_messages):
    sd = FakeSoundDevice([FakeSoundDevice.MIC, FakeSoundDevice.SPEAKER])
    monkeypatch.setitem(sys.modules, "sounddevice", sd)
    assert start_audio("off") is None and sd.streams == []           # off: no stream opened, and nothing to say
    fixed = start_audio("80")
    assert fixed is not None and sd.streams[-1].started and fixed.line.delay == 80 * 48   # 48 kHz
    fixed.follow_latency(200)
    assert fixed.line.delay == 80 * 48                                # a fixed delay does not follow the video
    fixed.close()
    assert sd.streams[-1].closed
    auto = start_audio("auto")
    assert auto.line.delay == 0
    auto.follow_latency(120)
    assert auto.line.delay == 120 * 48
    assert log_messages == []


def test_demo_run_accounts_for_every_frame(tmp_path):
    stats = tmp_path / "s.json"
    assert main(["run", "-g", "random", "--arch", "fixture128", "--frames", "8", "--sink", "null", "--size", "64x64",
                 "--stats", str(stats)]) == 0
    r = json.loads(stats.read_text())
    assert r["written"] == 8 and r["frames_in"] == r["written"] + r["dropped"]
    assert {"track", "render", "sinks", "added"} <= set(r["stages"])


@pytest.mark.slow   # about 40 s on 2 cores: makes a StyleGAN2 avatar, then drives it through the loop
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
    written = _read_frames(cap)
    assert len(written) == 40 and written[0].shape[0] == 128 and written[0].shape[1] > 128  # driver beside the avatar
    # What the frames show, not only how many there are (an all-black video has the right count and shape).
    avatar = np.array([f[:, -128:] for f in written])
    driver = [f[:, :-128] for f in written]
    clip_frames = [cv2.resize(f, driver[0].shape[1::-1], interpolation=cv2.INTER_AREA)
                   for f in _read_frames(cv2.VideoCapture(str(clip)))]
    assert min(psnr(d, c, 255) for d, c in zip(driver, clip_frames)) > 30      # the clip, frame by frame: 34-39 dB
    # while the neutral pose is taken (the first second) the avatar rests: its own reconstruction, 37 dB (BGR here)
    assert psnr(avatar[0], Avatar.read(me).reconstruction[:, :, ::-1], 255) > 30
    # then it follows the driver: up to about 24 grey levels from its rest on average; a still one about 2 (the codec)
    change = np.abs(avatar.astype(np.float32) - avatar[0]).mean(axis=(1, 2, 3))
    assert change.max() > 8, f"the avatar did not move with the driver (at most {change.max():.1f} grey levels)"
    # paced like a live camera: frames the renderer cannot keep up with are dropped, and counted
    assert main(["run", "-a", str(me), "-d", str(small_directions), "--source", str(clip),
                 "--sink", "null", "--size", "64x64", "--stats", str(stats)]) == 0
    r = json.loads(stats.read_text())
    assert r["frames_in"] == 40 and r["written"] + r["dropped"] == 40


@needs_shared
def test_run_refuses_an_avatar_for_another_generator(tmp_path, quick_avatar, face128, small_directions, capsys):
    """An avatar made with the fixture, run with another generator of the same architecture: it loads and its
    codes fit, so only the avatar's record of whose it is can tell, and the run must say so."""
    from models.checkpoint import random_generator, save_safetensors, weights_hash
    other = random_generator(face128.arch, seed=5)
    other_file = save_safetensors(other, tmp_path / "other.safetensors")
    capsys.readouterr()
    assert main(["run", "-a", str(quick_avatar), "-g", str(other_file), "-d", str(small_directions), "--frames", "1",
                 "--sink", "null"]) == 2
    err = capsys.readouterr().err
    assert f"made for generator {weights_hash(face128)[:12]}" in err, err
    assert f"not for this one ({weights_hash(other)[:12]})" in err, err


def test_missing_camera_is_a_clear_error_after_retries(capsys, tmp_path):
    # /dev/video9 does not exist here: three attempts, then a message saying what to check
    cfg = tmp_path / "c.yaml"
    cfg.write_text("run:\n  camera_retry_s: 0.1\n")
    assert main(["--config", str(cfg), "run", "-g", "random", "--arch", "fixture128", "--source", "/dev/video9", "--frames", "2",
                 "--sink", "null", "--size", "64x64"]) == 2
    assert "could not be opened" in capsys.readouterr().err


def test_a_source_without_a_face_is_reported_once_while_it_lasts_and_at_the_end():
    """A source that shows no face leaves the avatar at rest: the run says so after two seconds of it (once, and
    again when a face is back), and its report says so when no frame had one."""
    from loguru import logger

    from live.pipeline.faceless import FacelessStretch
    from live.pipeline.run_report import RunReport, log_report
    messages = []
    handle = logger.add(lambda m: messages.append((m.record["level"].name, m.record["message"])), level="INFO")
    try:
        faceless = FacelessStretch()
        for k in range(200):                      # 8 s at 25 fps: a face for 1 s, none for 5 s, a face again
            faceless.see(not 25 <= k < 150, k / 25)
        log_report(RunReport(written=30, found_frames=0))
        log_report(RunReport(written=30, found_frames=1))
    finally:
        logger.remove(handle)
    warned = [text for level, text in messages if level == "WARNING"]
    assert len([w for w in warned if w.startswith("no face in the source for 2 s (since 1.0 s)")]) == 1, warned
    assert any(text.startswith("a face in the source again at 6.0 s") for _, text in messages), messages
    assert len([w for w in warned if w.startswith("no face was found in any frame")]) == 1, warned


def test_frames_in_flight_at_the_stop_are_not_reported_as_dropped():
    """A run stopped after N frames leaves a frame or two between stages: the summary says them apart from frames a
    stage dropped because it fell behind."""
    from loguru import logger

    from live.pipeline.run_report import IN_FLIGHT_AT_STOP, RunReport, log_report
    messages = []
    handle = logger.add(lambda m: messages.append(m.record["message"]), level="INFO")
    try:
        log_report(RunReport(frames_in=31, written=30, found_frames=30, dropped=1,
                             dropped_by_stage={"capture->motion": 0, IN_FLIGHT_AT_STOP: 1}))
        log_report(RunReport(frames_in=34, written=30, found_frames=30, dropped=4,
                             dropped_by_stage={"capture->motion": 3, IN_FLIGHT_AT_STOP: 1}))
    finally:
        logger.remove(handle)
    summaries = [m for m in messages if " frames in, " in m]
    assert summaries[0].startswith("31 frames in, 30 written, none dropped, 1 in flight at stop;"), summaries
    assert summaries[1].startswith("34 frames in, 30 written, 3 dropped (capture->motion 3), 1 in flight at stop;")


def test_options_for_a_latent_code_are_said_to_do_nothing_to_a_warp_avatar():
    """--strength, --latent-smoothing and --truncation shape a StyleGAN2 avatar's W+ code; on the warp (the demo
    painting here) they change nothing, and the run says so instead of ignoring them silently."""
    from loguru import logger

    from live.config import LiveConfig
    from live.pipeline.scene import build_scene
    messages = []
    handle = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    try:
        cfg = LiveConfig()
        build_scene(cfg)
        assert not [m for m in messages if "latent code" in m]
        cfg.run.strength, cfg.run.latent_smoothing = 2.0, 0.5
        assert build_scene(cfg).kind == "warp"
    finally:
        logger.remove(handle)
    said = [m for m in messages if "latent code" in m]
    assert len(said) == 1 and "--strength and --latent-smoothing shape" in said[0], messages
