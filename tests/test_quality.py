"""Reenactment metrics and `python -m bench quality`: identity, landmarks, pose, the protocols."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from bench.reenactment_metrics import Measurer, compare, nme, pose_errors, psnr, ssim
from live.io.sources import iter_video_rgb, read_image_rgb
from models.identity.embedding import DlibIdentity, csim, distance
from tests.conftest import SHARED, needs_shared, write_clip

pytestmark = needs_shared
MEDIA = SHARED / "media"
PORTRAITS = ("portrait_vermeer.jpg", "portrait_mona_lisa.jpg", "portrait_bouguereau.jpg", "portrait_einstein.jpg")


@pytest.fixture(scope="module")
def identity():
    return DlibIdentity()


@pytest.fixture(scope="module")
def measurer(identity):
    m = Measurer(identity)
    yield m
    m.close()


def _frames(clip: str, every: int):
    return [f for k, _, f in iter_video_rgb(MEDIA / clip) if k % every == 0]


@pytest.fixture(scope="module")
def same_person_level(identity):
    """The 5th percentile of CSIM between frames of one person (two clips, every 16th frame)."""
    levels = []
    for clip in ("lp_d3.mp4", "lp_d10.mp4"):
        e = identity.embed(_frames(clip, 16))
        i, j = np.triu_indices(len(e), 1)
        levels.append(np.percentile(csim(e[i], e[j]), 5))
    return min(levels)


def test_csim_of_a_face_with_itself_and_its_mirror(identity, same_person_level):
    img = read_image_rgb(MEDIA / "portrait_bouguereau.jpg")
    e, mirror = identity.embed([img, np.ascontiguousarray(img[:, ::-1])])
    assert csim(e, e) == pytest.approx(1.0, abs=1e-9)
    assert csim(e, mirror) > same_person_level and distance(e, mirror) < 0.6


def test_different_people_score_below_the_same_person_level(identity, same_person_level):
    e = identity.embed([read_image_rgb(MEDIA / p) for p in PORTRAITS])
    assert np.isfinite(e).all()
    i, j = np.triu_indices(len(e), 1)
    scores = csim(e[i], e[j])
    assert (scores < same_person_level).all(), (scores, same_person_level)   # measured: 0.85-0.91 vs 0.94


def test_no_face_gives_nan_not_a_guess(identity):
    assert np.isnan(identity.embed([np.full((200, 200, 3), 128, np.uint8)])).all()


def _crop256(frame):
    h, w = frame.shape[:2]
    s = min(h, w)
    return cv2.resize(frame[(h - s) // 2:(h + s) // 2, (w - s) // 2:(w + s) // 2], (256, 256),
                      interpolation=cv2.INTER_AREA)


def test_identical_frames_score_zero_and_a_rotation_is_measured(measurer):
    frame = _crop256(next(iter_video_rgb(MEDIA / "lp_d10.mp4", max_frames=1))[2])
    a = measurer(frame)
    same = compare(measurer(frame), a, frame, frame)
    assert same["nme"] == 0 and same["pose_err"] == 0 and same["exp_err"] == 0 and same["csim"] > 0.999
    assert same["psnr"] == float("inf") and same["ssim"] == pytest.approx(1.0)
    m = cv2.getRotationMatrix2D((128, 128), 10, 1.0)     # 10 degrees counter-clockwise on screen
    turned = measurer(cv2.warpAffine(frame, m, (256, 256), borderMode=cv2.BORDER_REPLICATE))
    moved = compare(turned, a)
    assert moved["roll_err"] == pytest.approx(10, abs=1.5) and moved["nme"] > 5
    assert moved["yaw_err"] < 2 and moved["pitch_err"] < 2


def test_pose_error_of_a_clip_against_its_mirror(measurer):
    """Mirroring negates yaw and roll: the error is twice their size, pitch's is zero."""
    errors, yaw, roll = [], [], []
    for frame in _frames("lp_d3.mp4", 40):
        f = _crop256(frame)
        a, b = measurer(f), measurer(np.ascontiguousarray(f[:, ::-1]))
        errors.append(pose_errors(b.params, a.params))
        yaw.append(abs(a.params[0]))
        roll.append(abs(a.params[2]))
    errors = np.array(errors)
    assert errors[:, 0].mean() == pytest.approx(2 * np.mean(yaw), rel=0.1, abs=0.3)
    assert errors[:, 2].mean() == pytest.approx(2 * np.mean(roll), rel=0.1, abs=0.3)
    assert errors[:, 1].mean() < 0.5


def test_psnr_and_ssim_fall_with_noise():
    rng = np.random.default_rng(0)
    img = _crop256(read_image_rgb(MEDIA / "portrait_einstein.jpg"))
    noisy = np.clip(img + rng.normal(0, 20, img.shape), 0, 255).astype(np.uint8)
    noisier = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert 20 < psnr(img, noisy) < 30 and psnr(img, noisier) < psnr(img, noisy) - 4
    assert 0 < ssim(img, noisier) < ssim(img, noisy) < 0.9


def test_nme_is_in_percent_of_the_interocular_distance():
    ref = np.zeros((478, 3))
    from models.face.landmarks import EYE_LEFT, EYE_RIGHT
    ref[EYE_LEFT["outer"], 0], ref[EYE_RIGHT["outer"], 0] = 100.0, 50.0    # inter-ocular 50 px
    assert nme(ref + [5.0, 0.0, 0.0], ref) == pytest.approx(10.0)          # every point 5 px off: 10 %


def test_teeth_share_counts_teeth_not_lips_or_tongue(measurer):
    """lp_d0 smiling with its teeth (frame 30) against the same face with closed lips (frame 0), and the teeth
    painted the lips' red: teeth count, lips and a red inside do not."""
    from bench.reenactment_metrics import eye_white, teeth_share
    from models.face.mesh_topology import boundary_loops
    frames = {k: f for k, _, f in iter_video_rgb(MEDIA / "lp_d0.mp4") if k in (0, 30)}
    rest, smile = (measurer(frames[k]) for k in (0, 30))
    white = eye_white(frames[0], rest.landmarks)
    assert teeth_share(frames[30], smile.landmarks, white) > 0.4
    assert teeth_share(frames[0], rest.landmarks, white) < 0.02
    red = frames[30].copy()
    mask = np.zeros(red.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(smile.landmarks[boundary_loops()["mouth"], :2]).astype(np.int32)], 255)
    red[mask > 0] = (190, 70, 80)
    assert teeth_share(red, smile.landmarks, white) < 0.02


# -- the benchmark ------------------------------------------------------------------------------------------
class FakeFeatures(torch.nn.Module):
    """Stands in for the TorchScript metric networks: mean colour features (same call signatures)."""

    def forward(self, x: torch.Tensor, return_features: bool = True, resize_images: bool = False,
                return_lpips: bool = False, rescale: bool = False, resize: bool = False) -> torch.Tensor:
        dims = list(range(2, x.ndim))
        x = x.float()
        return torch.cat([x.mean(dims), x.std(dims), x.amax(dims)], 1)


@pytest.mark.slow   # ~55 s on 2 cores: CI's slow step runs it
def test_bench_quality_both_protocols(tmp_path, fixture_path, small_directions, capsys):
    from bench.__main__ import main
    from live.cli import main as live_main
    write_clip(MEDIA / "lp_d3.mp4", tmp_path / "d3.mp4", 12)
    net = torch.jit.script(FakeFeatures())
    net.save(str(tmp_path / "features.pt"))
    for name in ("lpips-vgg16", "fid-inception"):   # FVD's network stays absent: its metric is skipped
        assert live_main(["models", "import", str(tmp_path / "features.pt"), "--name", name, "--kind", "metric"]) == 0
    (tmp_path / "vermeer.jpg").symlink_to(MEDIA / "portrait_vermeer.jpg")
    out = tmp_path / "q"
    assert main(["quality", "-g", str(fixture_path), "-d", str(small_directions), "--media", str(tmp_path),
                 "--clips", "d3.mp4", "--portraits", "vermeer.jpg", "--drivers", "d3.mp4", "--frames", "3",
                 "--steps", "5", "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    record = json.loads((out / "summary.json").read_text())
    rows = {(r["protocol"], r["method"]): r for r in record["summary"]}
    assert set(rows) == {("self", "output"), ("self", "still"), ("self", "real"), ("cross", "output"),
                         ("cross", "still")}
    assert all(r["frames"] == 3 for r in rows.values())
    real = rows[("self", "real")]   # the real frame at 128 px against itself at 256 px: a high ceiling
    assert real["faces"] == "3/3" and real["csim"] > 0.9 and real["psnr"] > 25 and real["nme"] < 5
    assert rows[("cross", "output")]["psnr"] is None          # no ground truth across identities
    assert isinstance(record["perceptual"]["lpips"], float) and isinstance(record["perceptual"]["fid"], float)
    assert "live models fetch fvd-i3d" in record["perceptual"]["fvd"]
    lines = (out / "frames.csv").read_text().splitlines()
    assert len(lines) == 1 + 3 * 3 + 3 * 2                       # header, 3 methods x 3 frames, 2 x 3
    assert cv2.imread(str(out / "strip-self-d3-d3.png")).shape == (512, 3 * 256, 3)
    assert (out / "strip-cross-vermeer-d3.png").is_file() and "CSIM" in capsys.readouterr().out


def test_bench_quality_says_when_a_clip_has_no_face(tmp_path, fixture_path, small_directions):
    from bench.__main__ import main
    writer = cv2.VideoWriter(str(tmp_path / "wall.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 64))
    for _ in range(5):
        writer.write(np.full((64, 64, 3), 90, np.uint8))
    writer.release()
    with pytest.raises(SystemExit, match=r"wall.mp4: no face found in any frame"):
        main(["quality", "-g", str(fixture_path), "-d", str(small_directions), "--media", str(tmp_path),
              "--clips", "wall.mp4", "--portraits", "--out", str(tmp_path / "q"), "--json", str(tmp_path / "r.json")])
    with pytest.raises(SystemExit, match="nothing.mp4: no such file"):
        main(["quality", "-g", str(fixture_path), "-d", str(small_directions), "--media", str(tmp_path),
              "--clips", "nothing.mp4", "--portraits", "--out", str(tmp_path / "q")])


def test_arcface_network_loads_its_weights_and_refuses_others(tmp_path):
    from models.errors import CheckpointError
    from models.identity.arcface import ArcFace, build_arcface
    from models.identity.embedding import ArcFaceIdentity
    torch.save(ArcFace().state_dict(), tmp_path / "model_ir_se50.pth")
    identity = ArcFaceIdentity(tmp_path / "model_ir_se50.pth")
    e = identity.embed([read_image_rgb(MEDIA / "portrait_einstein.jpg")])
    assert e.shape == (1, 512) and np.linalg.norm(e[0]) == pytest.approx(1.0, abs=1e-5)
    torch.save({"body.0.weight": torch.zeros(3)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not the IR-SE-50 ArcFace network"):
        build_arcface(tmp_path / "other.pth")
