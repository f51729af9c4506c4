"""Neutral-pose calibration: still photo and real video succeed, motion and no face give clear errors."""

import cv2
import numpy as np
import pytest
import yaml

from calibration import CalibrationError, CalibrationProfile, ProfileError
from live.cli import main
from live.config import LiveConfig
from live.paths import profiles_dir
from live.tracking.calibrate import calibrate
from tests.conftest import SHARED, needs_shared

MEDIA = SHARED / "media"
pytestmark = needs_shared


def test_still_photo_gives_a_profile_loadable_by_name(capsys):
    assert main(["calibrate", "--source", str(MEDIA / "portrait_bouguereau.jpg"), "--name", "me"]) == 0
    out = capsys.readouterr().out
    assert "profile 'me' written" in out and "yaw" in out and "blink_right" in out
    profile = CalibrationProfile.load("me", profiles_dir())
    assert profile.frames >= 60 and profile.template.shape == (478, 3)
    assert np.abs(profile.spread).max() < 0.05  # a photo barely moves (the tracker ROI settles)
    doc = yaml.safe_load((profiles_dir() / "me.yaml").read_text())
    assert set(doc["neutral"]) >= {"yaw", "pitch", "roll", "jaw", "blink_left"}
    assert CalibrationProfile.load(profiles_dir() / "me.yaml", profiles_dir()).name == "me"


def test_real_video_still_stretch():
    profile, path = calibrate(LiveConfig(), str(MEDIA / "vox_driving.mp4"), seconds=1.0, name="vox")
    assert path.is_file() and profile.frames >= 25
    assert np.all(np.abs(profile.neutral[:3]) < 30)
    assert (profile.spread[:3] < 3).all()  # still: the pose barely moved within the window


def test_moving_head_is_rejected():
    with pytest.raises(CalibrationError, match="too much motion.*Hold your head still"):
        calibrate(LiveConfig(), str(MEDIA / "lp_d3.mp4"), seconds=2.0, name="x")


def test_no_face(tmp_path):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((480, 640, 3), 200, np.uint8))
    with pytest.raises(CalibrationError, match="no face found"):
        calibrate(LiveConfig(), str(blank), seconds=1.0, name="x")


def test_missing_camera_is_a_clear_cli_error(capsys):
    assert main(["calibrate", "--source", "7"]) == 2
    assert "camera 7 could not be opened" in capsys.readouterr().err


def test_unknown_and_damaged_profiles(tmp_path):
    with pytest.raises(ProfileError, match="no calibration profile 'nobody'.*live calibrate"):
        CalibrationProfile.load("nobody", profiles_dir())
    profiles_dir().mkdir(parents=True, exist_ok=True)
    (profiles_dir() / "bad.yaml").write_text("version: 1\nname: bad\nframes: 3\n")
    (profiles_dir() / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ProfileError, match="damaged"):
        CalibrationProfile.load("bad", profiles_dir())


def test_eyes_half_closed_is_not_neutral():
    with pytest.raises(CalibrationError, match="no neutral face: keep your mouth closed and your eyes open"):
        calibrate(LiveConfig(), str(MEDIA / "vox_source.png"), seconds=1.0, name="x")
