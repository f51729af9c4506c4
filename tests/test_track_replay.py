"""A recorded face-parameter track drives the avatar with no camera and no tracker (`live run --source CSV`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from live.cli import main
from live.pipeline.messages import Captured
from live.tracking.track_file import CSV_COLUMNS, TrackFileError, read_track
from tests.conftest import SHARED, needs_shared


def _write_track(path, params: np.ndarray, fps: float = 25.0, found=None) -> None:
    found = np.isfinite(params).all(1) if found is None else found
    lines = [",".join(CSV_COLUMNS)]
    for k, (row, ok) in enumerate(zip(params, found)):
        values = [f"{v:.4f}" if ok else "" for v in row]
        lines.append(",".join([str(k), f"{k / fps:.4f}", str(int(ok)), "0.9"] + values))
    path.write_text("\n".join(lines) + "\n")


def test_a_track_reads_back_with_its_times_and_lost_frames(tmp_path):
    params = np.tile(np.linspace(-1, 1, 15), (10, 1)) * np.arange(10)[:, None]
    params[4] = np.nan
    _write_track(tmp_path / "t.csv", params, fps=30.0)
    track = read_track(tmp_path / "t.csv")
    assert len(track) == 10 and abs(track.fps - 30.0) < 0.1
    assert not track.found[4] and np.isnan(track.params[4]).all() and track.found.sum() == 9
    assert np.allclose(track.params[7], params[7], atol=1e-4)


@pytest.mark.parametrize("content, message", [
    ("name,age\nbob,3\n", "not a track of live's face parameters"),
    ("", "not a track"),
    (",".join(CSV_COLUMNS) + "\n", "holds no frames"),
    (",".join(CSV_COLUMNS) + "\n0,0.0,1,0.9,1,2\n", "line 2: 6 columns"),
    (",".join(CSV_COLUMNS) + "\n0,0.0,1,0.9," + ",".join(["x"] * 15) + "\n", "line 2"),
])
def test_a_foreign_or_damaged_file_is_refused_with_the_fix(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(TrackFileError, match=message) as e:
        read_track(path)
    assert "live track" in str(e.value)


def test_the_motion_stage_takes_recorded_parameters_instead_of_tracking():
    from live.pipeline.motion import Controls, MotionStage
    from live.pipeline.slots import LatestSlot
    from models.face.landmarks import PARAM_NAMES
    from models.face.params import ParameterSpace

    class NoTracker:
        def __call__(self, *args):
            raise AssertionError("a recorded track must not be tracked again")
    space = ParameterSpace(PARAM_NAMES, np.array([[-6.0, 6.0]] * 15))
    stage = MotionStage(LatestSlot("a"), LatestSlot("b"), NoTracker(), None, space, np.zeros(15),
                        Controls(absolute=True), None, 0.5, 0.5)
    row = np.linspace(-2, 2, 15)
    m = stage.process(Captured(0, 0.0, None, params=row))
    assert m.found and np.allclose(m.params, row)
    assert np.allclose(stage.last_delta, row, atol=1e-6)        # before easing in: the recorded change itself
    lost = stage.process(Captured(1, 0.04, None, params=np.full(15, np.nan)))
    assert not lost.found


@needs_shared
def test_live_run_replays_a_recorded_track_without_a_tracker(tmp_path, monkeypatch):
    """`live track` records, `live run --source CSV` replays: every frame delivered, no tracker built, and the
    avatar moves with the recording (the demo painting, mesh-warped)."""
    track_csv = tmp_path / "driver.csv"
    assert main(["track", str(SHARED / "media" / "lp_d3.mp4"), "--out", str(track_csv), "--frames", "40"]) == 0
    from live.pipeline import loop

    def no_tracker(*args):
        raise AssertionError("the tracker was loaded for a recorded track")
    monkeypatch.setattr(loop, "make_estimator", no_tracker)
    stats, video = tmp_path / "s.json", tmp_path / "out.mp4"
    assert main(["run", "--source", str(track_csv), "--fast", "--sink", f"file:{video}", "--size", "96x96",
                 "--frames", "40", "--stats", str(stats)]) == 0
    report = json.loads(stats.read_text())
    assert report["written"] == 40 and report["found_frames"] == 40
    import cv2
    cap = cv2.VideoCapture(str(video))
    frames = []
    while (ok := cap.read())[0]:
        frames.append(ok[1].astype(np.float32))
    cap.release()
    assert len(frames) == 40
    change = [np.abs(f - frames[0]).mean() for f in frames]
    assert max(change) > 2.0, "the avatar did not move with the recorded driver"


def test_live_run_refuses_a_csv_that_is_not_a_track(tmp_path, capsys):
    bad = tmp_path / "notes.csv"
    bad.write_text("what,when\nlunch,noon\n")
    assert main(["run", "--source", str(bad), "--sink", "null", "--frames", "2"]) == 2
    assert "not a track of live's face parameters" in capsys.readouterr().err


def test_a_neutral_taken_turned_aside_is_shown_on_the_preview_in_relative_mode(tmp_path):
    """The preview window's HUD says when the neutral was taken askew (the log line is easy to miss in a call), one
    line per problem, and what to do; a straight neutral adds nothing, nor does absolute mode (no neutral used).
    (That c clears it: tests/test_calibration.py.)"""
    from live.config import LiveConfig
    from live.pipeline.loop import Pipeline
    from models.face.landmarks import PARAM_NAMES
    lines = {}
    for name, yaw in (("turned", -12.0), ("straight", 2.0)):
        params = np.zeros((40, len(PARAM_NAMES)))
        params[:, PARAM_NAMES.index("yaw")] = yaw
        _write_track(tmp_path / f"{name}.csv", params)
        cfg = LiveConfig()
        cfg.run.source, cfg.run.sinks, cfg.run.fast, cfg.run.frames = str(tmp_path / f"{name}.csv"), ["null"], True, 40
        with Pipeline(cfg) as pipeline:
            pipeline.run()
            lines[name] = pipeline.hud_lines()
            pipeline.controls.absolute = True
            lines[name + ", absolute"] = pipeline.hud_lines()
    turned = lines["turned"]
    assert turned[-3:] == ["neutral pose taken with", "your head turned aside 12 degrees",
                           "face the camera, eyes open, press c"], turned
    for other in ("straight", "turned, absolute", "straight, absolute"):
        assert not [line for line in lines[other] if "neutral" in line], lines[other]
