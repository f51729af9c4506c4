"""`live gan dataset`: steady crops with the generator's framing, no-face frames and duplicates skipped."""

import json

import cv2
import numpy as np

from live.cli import main
from live.gan.dataset import _compose, _decompose, _segments, smooth_track
from models.framing import crop_transform
from tests.conftest import SHARED, needs_shared, write_clip


def test_crop_matrix_round_trip():
    pts = np.random.default_rng(0).uniform(100, 300, size=(478, 3))
    for framing in ("fixture", "ffhq"):
        m = crop_transform(pts, framing, 128).matrix
        assert np.allclose(_compose(_decompose(m, 128), 128), m, atol=1e-9)


def test_smoothing_and_segments():
    x = np.concatenate([np.zeros(20), np.ones(20)])[:, None]
    y = smooth_track(x, 3.0)
    assert y[0, 0] == 0 and y[-1, 0] == 1 and 0 < y[20, 0] < 1   # no pull toward zero at the ends
    assert _segments(np.array([0, 1, 1, 0, 1], bool)) == [(1, 3), (4, 5)]


@needs_shared
def test_dataset_from_clips(tmp_path):
    out = tmp_path / "data"
    clip = SHARED / "media" / "lp_d0.mp4"
    assert main(["gan", "dataset", str(clip), "-o", str(out), "--size", "64", "--framing", "fixture",
                 "--every", "2"]) == 0
    meta = json.loads((out / "dataset.json").read_text())
    images = sorted(out.glob("*.png"))
    assert meta["size"] == 64 and len(images) == len(meta["images"]) > 10
    first = cv2.imread(str(images[0]))
    assert first.shape == (64, 64, 3) and first.std() > 10
    # the crop is smoothed: consecutive crop centres move less than the raw per-frame ones would jump
    centres = np.array([np.linalg.inv(np.vstack([m["crop_matrix"], [0, 0, 1]]))[:2] @ [32, 32, 1]
                        for m in meta["images"]])
    assert np.abs(np.diff(centres, axis=0)).max() < 20
    # a clip with every frame repeated: de-duplication keeps one of each pair
    doubled = write_clip(clip, tmp_path / "doubled.mp4", 20, repeat=2)
    counts = []
    for dedupe in ("0", "3"):
        d = tmp_path / f"dd{dedupe}"
        assert main(["gan", "dataset", str(doubled), "-o", str(d), "--size", "64", "--framing", "fixture",
                     "--smooth", "0", "--dedupe", dedupe]) == 0
        counts.append(len(json.loads((d / "dataset.json").read_text())["images"]))
    assert counts[0] == 40 and counts[1] <= 22
