"""`live track`: CSV and overlay from a real clip; a face-less image gives found=0 rows."""

import csv

import cv2
import numpy as np

from live.cli import main
from live.tracking.track_file import CSV_COLUMNS
from tests.conftest import SHARED, needs_shared

pytestmark = needs_shared


def test_csv_and_overlay_from_a_clip(tmp_path):
    out_csv, out_mp4 = tmp_path / "p.csv", tmp_path / "o.mp4"
    assert main(["track", str(SHARED / "media" / "lp_d0.mp4"), "--out", str(out_csv),
                 "--overlay", str(out_mp4), "--frames", "30"]) == 0
    rows = list(csv.reader(open(out_csv)))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 31
    assert CSV_COLUMNS[:7] == ("frame", "time", "found", "confidence", "yaw", "pitch", "roll")
    assert all(r[2] == "1" for r in rows[1:])
    values = np.array([[float(v) for v in r[4:]] for r in rows[1:]])
    assert values.shape == (30, 15) and np.isfinite(values).all()
    cap = cv2.VideoCapture(str(out_mp4))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30
    assert int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 512 + 260  # frame + parameter panel


def test_no_face_rows(tmp_path):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((480, 640, 3), 200, np.uint8))
    out_csv = tmp_path / "p.csv"
    assert main(["track", str(wall), "--out", str(out_csv)]) == 0
    rows = list(csv.reader(open(out_csv)))
    assert rows[1][2] == "0" and rows[1][4:] == [""] * 15


def test_missing_source(tmp_path, capsys):
    assert main(["track", str(tmp_path / "nothing.mp4")]) == 2
    assert "neither a camera index nor an existing file" in capsys.readouterr().err
