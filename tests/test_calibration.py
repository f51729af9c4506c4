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


def test_a_neutral_taken_turned_aside_or_with_one_eye_narrowed_is_said():
    """The first second with a face sets the neutral pose; a head turned aside then, or one eye narrowed (a wink),
    leaves the avatar askew for the whole call, so the run says so and how to set it again; a neutral facing the
    camera (a camera above the screen tilts it a little) is not said."""
    from loguru import logger

    from calibration.neutral import askew_neutral
    from live.pipeline.messages import Captured
    from live.pipeline.motion import WINK_FROM, Controls, MotionStage
    from live.pipeline.slots import LatestSlot
    from models.face.landmarks import PARAM_NAMES
    from models.face.params import ParameterSpace
    names = list(PARAM_NAMES)

    def neutral(**values):
        p = np.zeros(len(names))
        for k, v in values.items():
            p[names.index(k)] = v
        return p

    assert askew_neutral(neutral(yaw=4.0, pitch=8.0, blink_left=0.4, blink_right=-0.3)) == []
    assert askew_neutral(neutral(yaw=-12.0)) == ["your head turned aside 12 degrees"]
    assert askew_neutral(neutral(pitch=20.0, blink_left=1.9, blink_right=0.2), uneven_eyes=WINK_FROM) == [
        "your head tilted up or down 20 degrees", "one eye more closed than the other"]

    space = ParameterSpace(PARAM_NAMES, np.array([[-6.0, 6.0]] * 15))
    messages = []
    handle = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    try:
        for first_second in (neutral(yaw=2.0), neutral(yaw=-12.0, blink_left=1.9, blink_right=0.3)):
            stage = MotionStage(LatestSlot("a"), LatestSlot("b"), None, None, space, np.zeros(15), Controls(), None,
                                0.5, 0.5)
            for k in range(40):                  # a recorded track: 1.6 s at 25 fps
                stage.process(Captured(k, k / 25, None, params=first_second))
            assert stage.neutral is not None and (stage.askew == []) == (first_second[0] == 2.0)
        stage.controls.recalibrate = True        # c in the preview: taken again, and the preview's notice goes
        stage.process(Captured(40, 1.6, None, params=neutral()))
        assert stage.askew == [] and stage.neutral is None
        # a calibration profile's neutral is judged the same, when the run starts
        profiled = MotionStage(LatestSlot("a"), LatestSlot("b"), None, None, space, np.zeros(15), Controls(),
                               neutral(pitch=-18.0), 0.5, 0.5)
        assert profiled.askew == ["your head tilted up or down 18 degrees"]
    finally:
        logger.remove(handle)
    assert len(messages) == 2 and messages[0].startswith(
        "the neutral pose was taken with your head turned aside 12 degrees and one eye more closed than the other: "), messages
    assert "live calibrate" in messages[0]
    assert messages[1].startswith("the calibration profile's neutral pose was taken with your head tilted up or "
                                  "down 18 degrees: ") and "`live calibrate` again" in messages[1]


def test_calibrate_warns_of_a_profile_taken_turned_aside(capsys):
    """Vermeer's girl looks over her shoulder (34 degrees): a profile taken from her is written, with the warning."""
    assert main(["calibrate", "--source", str(MEDIA / "portrait_vermeer.jpg"), "--name", "turned"]) == 0
    out = capsys.readouterr()
    assert "profile 'turned' written" in out.out
    assert "this profile was taken with your head turned aside 3" in " ".join(out.err.split()), out.err
