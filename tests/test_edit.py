"""`live edit`: set and sweep parameters through a direction matrix."""

import cv2
import pytest

from live.cli import main
from live.directions.edit import parse_assignments, parse_sweep
from tests.conftest import needs_shared


def test_parsing():
    assert parse_assignments(["yaw=20", "jaw=-1.5"]) == {"yaw": 20.0, "jaw": -1.5}
    with pytest.raises(ValueError, match="NAME=VALUE with NAME one of yaw"):
        parse_assignments(["yawn=3"])
    with pytest.raises(ValueError, match="not a number"):
        parse_assignments(["yaw=left"])
    name, values = parse_sweep("pitch=-10:10", 5)
    assert name == "pitch" and list(values) == [-10, -5, 0, 5, 10]
    with pytest.raises(ValueError, match="NAME=LO:HI"):
        parse_sweep("pitch=10", 5)


@needs_shared
def test_set_sweep_and_errors(tmp_path, fixture_path, small_directions, capsys):
    base = ["edit", "-g", str(fixture_path), "-d", str(small_directions), "--seed", "3"]
    png = tmp_path / "edit.png"
    assert main(base + ["--set", "pitch=10", "jaw=1", "-o", str(png)]) == 0
    img = cv2.imread(str(png))
    assert img.shape == (128, 256, 3)
    assert abs(img[:, :128].astype(int) - img[:, 128:].astype(int)).mean() > 1  # the edit changed the face
    strip = tmp_path / "strip.png"
    assert main(base + ["--sweep", "jaw=-1:2", "--steps", "4", "-o", str(strip)]) == 0
    assert cv2.imread(str(strip)).shape == (128, 512, 3)
    video = tmp_path / "sweep.mp4"
    assert main(base + ["--sweep", "pitch=-8:8", "--steps", "3", "-o", str(video)]) == 0
    assert int(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert main(base + ["-o", str(png)]) == 2
    assert "nothing to edit" in capsys.readouterr().err
