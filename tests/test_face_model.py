"""The 3D face parameters: properties on synthetic rotations and on real clips (issue #3)."""

import cv2
import numpy as np
import pytest

from live.io.sources import iter_video_rgb
from models.face.landmarks import (
    EXPRESSION_NAMES,
    EYE_LEFT,
    EYE_RIGHT,
    LIP_LOWER_INNER,
    LIP_UPPER_INNER,
    MIDLINE,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    PARAM_NAMES,
)
from models.face.shape_model import (
    FaceModel,
    angles_from_rotation,
    rotation_from_angles,
)
from models.face.tracker import MediaPipeTracker
from tests.conftest import SHARED, needs_shared

MEDIA = SHARED / "media"
IX = {n: i for i, n in enumerate(PARAM_NAMES)}


@pytest.fixture(scope="module")
def model():
    return FaceModel.load()


def test_shipped_model_is_the_papers_parameter_vector(model):
    assert PARAM_NAMES[:4] == ("yaw", "pitch", "roll", "jaw") and len(PARAM_NAMES) == 15
    assert model.mean.shape == (478, 3) and model.exp_basis.shape == (12, 478, 3)
    assert (model.param_range[:, 1] > model.param_range[:, 0]).all()


def test_shipped_model_is_mirror_symmetric(model):
    p = model.mirror
    assert (p[p] == np.arange(478)).all() and all(p[i] == i for i in MIDLINE)
    assert p[MOUTH_LEFT] == MOUTH_RIGHT and p[EYE_LEFT["upper"]] == EYE_RIGHT["upper"]
    mirrored = (model.mean * [-1, 1, 1])[p]
    assert np.abs(mirrored - model.mean).max() < 1e-5


def test_angle_conversions_roundtrip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        ang = rng.uniform(-60, 60, 3)
        assert np.allclose(angles_from_rotation(rotation_from_angles(*ang)), ang, atol=1e-9)


def _expressive_frame(model):
    """A synthetic but far-from-neutral face: mean shape with mouth open, smile and a wink."""
    exp = np.zeros(12)
    exp[[EXPRESSION_NAMES.index(n) for n in ("jaw", "smile_left", "blink_right")]] = [2.0, 1.5, 2.0]
    return model.shape(identity=model.id_std * 0.5, expression=exp) * 150 + [320, 240, 0]


@pytest.mark.parametrize("source", ["model", "tracked"])
def test_known_rotation_is_recovered_and_similarity_changes_nothing(model, source):
    if source == "tracked":
        if not (MEDIA / "lp_d6.mp4").is_file():
            pytest.skip(f"needs {MEDIA}")
        frames = [f for _, _, f in iter_video_rgb(MEDIA / "lp_d6.mp4", max_frames=1)]
        with MediaPipeTracker() as tracker:
            x = tracker.track(frames[0]).landmarks.astype(np.float64)
    else:
        x = _expressive_frame(model)
    base = model.fit(x)
    rng = np.random.default_rng(1)
    centre = x.mean(0)
    for _ in range(20):
        ang = rng.uniform(-30, 30, 3)
        moved = (x - centre) @ rotation_from_angles(*ang).T * rng.uniform(0.5, 2) + centre + rng.uniform(-80, 80, 3)
        fit = model.fit(moved)
        relative = angles_from_rotation(fit.rotation @ base.rotation.T)
        assert np.abs(relative - ang).max() < 0.5
        span = model.param_range[3:, 1] - model.param_range[3:, 0]
        assert (np.abs(fit.expression - base.expression) / span).max() < 0.03  # pose-invariant expression


def test_synthetic_pose_is_read_back(model):
    x = _expressive_frame(model)
    centre = x.mean(0)
    for ang in [(20, 0, 0), (0, -15, 0), (0, 0, 25), (-25, 10, -8)]:
        fit = model.fit((x - centre) @ rotation_from_angles(*ang).T + centre)
        assert np.abs(fit.pose - model.fit(x).pose - ang).max() < 0.5


def test_bad_landmarks(model):
    with pytest.raises(ValueError, match=r"\[478, 3\]"):
        model.fit(np.zeros((468, 3)))
    bad = model.mean.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)


# --- real clips -------------------------------------------------------------------------

def _track_params(model, clip, transform=None, max_frames=None):
    rows, marks = [], []
    with MediaPipeTracker() as tracker:
        for _, _, frame in iter_video_rgb(MEDIA / clip, max_frames=max_frames):
            if transform is not None:
                frame = transform(frame)
            obs = tracker.track(frame)
            rows.append(model.fit(obs.landmarks).params if obs.found else np.full(15, np.nan))
            marks.append(obs.landmarks if obs.found else np.full((478, 3), np.nan))
    return np.array(rows), np.array(marks)


def _corr(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return np.corrcoef(a[ok], b[ok])[0, 1]


@needs_shared
@pytest.mark.parametrize("clip", [pytest.param("lp_d3.mp4", marks=pytest.mark.slow), "vox_driving.mp4"])
def test_horizontal_flip(model, clip, tracked_clip):
    plain, _, _ = tracked_clip(clip)
    flipped, _ = _track_params(model, clip, transform=lambda f: np.ascontiguousarray(f[:, ::-1]))
    assert np.isfinite(plain).all(1).mean() > 0.95
    for name in ("yaw", "roll", "mouth_shift"):
        assert _corr(plain[:, IX[name]], flipped[:, IX[name]]) <= -0.95, name
    for name in ("pitch", "jaw", "pucker", "funnel", "lip_stretch", "brow_raise", "brow_frown", "chin_raise"):
        assert _corr(plain[:, IX[name]], flipped[:, IX[name]]) >= 0.95, name
    for left, right in (("blink_left", "blink_right"), ("smile_left", "smile_right")):
        assert _corr(plain[:, IX[left]], flipped[:, IX[right]]) >= 0.95, left
        assert _corr(plain[:, IX[right]], flipped[:, IX[left]]) >= 0.95, right


@needs_shared
def test_in_plane_rotation_moves_roll_only(model):
    def rotate(frame):
        h, w = frame.shape[:2]
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 10, 1.0)  # 10 degrees counter-clockwise
        return cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT)

    plain, _ = _track_params(model, "lp_d3.mp4", max_frames=150)
    turned, _ = _track_params(model, "lp_d3.mp4", transform=rotate, max_frames=150)
    delta = np.nanmedian(turned - plain, axis=0)
    assert abs(delta[IX["roll"]] - 10) <= 1.5
    assert abs(delta[IX["yaw"]]) < 1.5 and abs(delta[IX["pitch"]]) < 1.5
    span = model.param_range[3:, 1] - model.param_range[3:, 0]
    assert (np.abs(delta[3:]) / span).max() < 0.05


@needs_shared
@pytest.mark.parametrize("clip", [pytest.param("lp_d6.mp4", marks=pytest.mark.slow), "lp_d10.mp4"])
def test_jaw_and_blink_follow_the_image(model, clip, tracked_clip):
    """jaw vs the inner-lip gap, blink vs the eye opening, both measured on the raw 2D landmarks."""
    params, marks, _ = tracked_clip(clip)

    def dist(a, b):
        return np.linalg.norm(marks[:, a, :2] - marks[:, b, :2], axis=1)

    interocular = dist(EYE_LEFT["outer"], EYE_RIGHT["outer"])
    assert _corr(params[:, IX["jaw"]], dist(LIP_UPPER_INNER, LIP_LOWER_INNER) / interocular) >= 0.9
    for name, eye in (("blink_left", EYE_LEFT), ("blink_right", EYE_RIGHT)):
        opening = dist(eye["upper"], eye["lower"]) / dist(eye["outer"], eye["inner"])
        assert _corr(params[:, IX[name]], -opening) >= 0.9, name


@needs_shared
@pytest.mark.slow
def test_build_command_reproduces_the_shipped_model(tmp_path, model):
    from live.cli import main
    out = tmp_path / "face_model.npz"
    assert main(["face-model", "build", "--media", str(MEDIA), "-o", str(out)]) == 0
    rebuilt = FaceModel.load(out)
    assert (rebuilt.mirror == model.mirror).all()
    assert np.abs(rebuilt.mean - model.mean).max() < 1e-3
    assert np.abs(rebuilt.param_range - model.param_range).max() < 0.05 * np.abs(model.param_range).max()


def test_missing_or_foreign_model_file(tmp_path):
    with pytest.raises(ValueError, match="cannot read face model"):
        FaceModel.load(tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="format"):
        FaceModel.load(tmp_path / "other.npz")
