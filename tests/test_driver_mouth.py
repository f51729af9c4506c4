"""The driver's own mouth inside on a warp avatar (`--mouth driver`, live/warp/driver_mouth.py): cut from a tracked
frame, drawn into the avatar's hole in the same mouth frame, in the photo's light, through the loop."""

from __future__ import annotations

import json

import cv2
import numpy as np

from models.face.landmarks import PARAM_NAMES
from tests.conftest import SHARED, needs_shared, write_clip

MEDIA = SHARED / "media"


def _tracked(clip: str, index: int):
    """Frame `index` of a shared clip and its tracked landmarks."""
    from live.io.sources import iter_video_rgb
    from models.face.shape_model import FaceModel
    from models.face.tracker import MediaPipeTracker
    frame = next(f for k, _, f in iter_video_rgb(MEDIA / clip) if k == index)
    tracker = MediaPipeTracker(max_faces=1, video=False, mirror_index=FaceModel.load().mirror)
    try:
        obs = tracker.track(frame)
    finally:
        tracker.close()
    assert obs.found
    return frame, obs.landmarks


def _inside(landmarks: np.ndarray, shape) -> np.ndarray:
    from models.face.mesh_topology import boundary_loops
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[boundary_loops()["mouth"], :2]).astype(np.int32)], 255)
    return cv2.erode(mask, np.ones((5, 5), np.uint8)) > 0


@needs_shared
def test_a_driver_s_mouth_drawn_into_its_own_frame_comes_back_where_it_was():
    """Photo and driver one frame (lp_d0, teeth showing): the patch drawn into the frame with its mouth painted over
    puts the teeth back where they were, in their own colours (the colour carry is the identity between one face
    and itself, and both sides agree on the mouth's frame)."""
    from live.warp.driver_mouth import DriverMouth, cut_mouth
    frame, landmarks = _tracked("lp_d0.mp4", 30)
    inside = _inside(landmarks, frame.shape)
    assert inside.sum() > 200, "the clip's mouth is open at frame 30"
    blank = frame.copy()
    blank[inside] = (90, 40, 40)
    DriverMouth(frame, landmarks).draw(blank, landmarks[:, :2], cut_mouth(frame, landmarks))
    error = np.abs(blank[inside].astype(float) - frame[inside].astype(float)).mean()
    painted = np.abs(np.float64([90, 40, 40]) - frame[inside].astype(float)).mean()
    assert error < 0.15 * painted and error < 12, (error, painted)


def test_colours_follow_the_photo_s_light_not_the_driver_s():
    """Warm-lit driver: on a black-and-white photo its mouth comes out grey (a per-channel gain would turn the
    teeth cyan); on a colour photo a white tooth stays a white, not tinted against the skin; lightness follows the
    cheeks, never above the photo's eye whites or a little over its cheeks, whichever is lighter (a painting's
    small eyes read dark)."""
    from live.warp.driver_mouth import _lab, carry_colours
    driver_cheek = np.array([147.0, 84.0, 50.0])                  # lp_d3's warm cheek
    tooth, tongue = np.array([[200.0, 185.0, 165.0]]), np.array([[170.0, 80.0, 85.0]])
    grey = carry_colours(np.concatenate([tooth, tongue]), driver_cheek, np.array([180.0, 180.0, 180.0]),
                         np.array([230.0, 230.0, 230.0]))
    assert np.ptp(grey, axis=1).max() < 3, grey                   # no colour at all
    warm_cheek, warm_white = np.array([233.0, 194.0, 168.0]), np.array([238.0, 217.0, 203.0])   # Vermeer's
    warm = carry_colours(np.concatenate([tooth, tongue]), driver_cheek, warm_cheek, warm_white)
    a_tooth, b_tooth = _lab(warm[0])[1:]
    assert abs(a_tooth) < 8 and b_tooth > -2, warm[0]             # still a white: not cyan, not pink
    assert _lab(warm[1])[1] > 15, warm[1]                         # a tongue stays red
    top = max(_lab(warm_white)[0], 1.1 * _lab(warm_cheek)[0])
    assert _lab(warm[0])[0] <= top + 0.5                          # no tooth lighter than the photo's whites allow
    dark_eyes = carry_colours(tooth, driver_cheek, np.array([197.0, 167.0, 138.0]), np.array([129.0, 89.0, 71.0]))
    assert _lab(dark_eyes[0])[0] > 70, dark_eyes                   # Bouguereau's: his eye whites read as dark skin
    # the same tooth under a darker photo's light is darker
    dark = carry_colours(tooth, driver_cheek, warm_cheek * 0.6, warm_white * 0.6)
    assert _lab(dark[0])[0] < _lab(warm[0])[0] - 10
    # a driver's cheek with no colour to speak of (a grey beard, a cool white balance) turns no hue: the tongue
    # stays red, not green or blue, and is not oversaturated
    for grey_cheek in ([150.0, 150.0, 152.0], [140.0, 150.0, 150.0], [160.0, 140.0, 130.0]):
        out = _lab(carry_colours(tongue, np.array(grey_cheek), warm_cheek, warm_white)[0])
        own = _lab(tongue[0])
        assert out[1] > 15 and np.hypot(out[1], out[2]) < 1.3 * np.hypot(own[1], own[2]), (grey_cheek, out)


def test_a_mouth_too_small_in_the_camera_is_left_to_the_drawn_inside():
    from live.warp.driver_mouth import (
        PATCH_HEIGHT,
        PATCH_WIDTH,
        SHARP_WIDTH,
        DriverMouth,
        MouthPatch,
    )
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (200, 200, 3), dtype=np.uint8)
    points = np.zeros((478, 3))
    points[:, :2] = rng.uniform(60, 140, (478, 2))
    mouth = DriverMouth(photo, points)
    patch = MouthPatch(np.full((PATCH_HEIGHT, PATCH_WIDTH, 3), 255, np.uint8), np.full((PATCH_HEIGHT, PATCH_WIDTH), 255,
                       np.uint8), np.array([150.0, 100.0, 80.0]), SHARP_WIDTH[0] - 1)
    frame = photo.copy()
    mouth.draw(frame, points[:, :2], patch)
    assert np.array_equal(frame, photo)


@needs_shared
def test_a_mouth_between_sharp_and_too_small_is_drawn_in_part():
    """lp_d0's open mouth cut from the frame at full size, and at a fifth and a third of it (a face far from
    the camera): the full one is drawn, the smallest not at all, the middle one in between."""
    from live.warp.driver_mouth import SHARP_WIDTH, DriverMouth, cut_mouth
    frame, landmarks = _tracked("lp_d0.mp4", 30)
    inside = _inside(landmarks, frame.shape)
    blank = frame.copy()
    blank[inside] = (90, 40, 40)
    change = {}
    for scale in (1.0, 0.35, 0.2):
        small = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        patch = cut_mouth(small, landmarks * [scale, scale, 1.0])
        out = blank.copy()
        DriverMouth(frame, landmarks).draw(out, landmarks[:, :2], patch)
        change[scale] = np.abs(out[inside].astype(float) - blank[inside].astype(float)).mean()
        if scale == 0.2:
            assert patch.width_px < SHARP_WIDTH[0]
        elif scale == 0.35:
            assert SHARP_WIDTH[0] < patch.width_px < SHARP_WIDTH[1]
    assert change[0.2] == 0 and 0.1 * change[1.0] < change[0.35] < 0.9 * change[1.0], change


@needs_shared
def test_only_what_the_camera_saw_counts_as_the_driver_s_mouth():
    """The frame cut off below the upper lip: the patch's inside keeps none of the replicated rows past the edge."""
    from live.warp.driver_mouth import cut_mouth, patch_to_image
    frame, landmarks = _tracked("lp_d0.mp4", 30)
    edge = int(landmarks[13, 1]) + 2                       # just below the upper inner lip's middle
    full, cropped = cut_mouth(frame, landmarks), cut_mouth(np.ascontiguousarray(frame[:edge]), landmarks)
    to_patch = cv2.invertAffineTransform(patch_to_image(landmarks))
    ys, xs = np.nonzero(cropped.inside)
    rows_in_frame = (np.stack([xs, ys], 1) @ patch_to_image(landmarks)[:, :2].T + patch_to_image(landmarks)[:, 2])[:, 1]
    assert to_patch.shape == (2, 3) and full.inside.sum() > 2 * cropped.inside.sum() > 0
    assert (rows_in_frame < edge).all()


@needs_shared
def test_the_motion_stage_cuts_the_driver_s_mouth_only_when_asked():
    from live.config import LiveConfig
    from live.pipeline.messages import Captured
    from live.pipeline.motion import Controls, MotionStage
    from live.pipeline.slots import LatestSlot
    from live.tracking.estimator import make_estimator, make_smoother
    from live.warp.driver_mouth import MouthPatch, cut_mouth
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    frame, _ = _tracked("lp_d0.mp4", 30)
    cfg = LiveConfig()
    space = ParameterSpace(PARAM_NAMES, FaceModel.load().param_range)
    for cut in (cut_mouth, None):
        estimator = make_estimator(cfg.tracking)
        try:
            stage = MotionStage(LatestSlot("a"), LatestSlot("b"), estimator, make_smoother(cfg.smoothing), space,
                                np.zeros(len(PARAM_NAMES)), Controls(), np.zeros(len(PARAM_NAMES)), 0.5, 0.5,
                                mouth_cut=cut)
            m = stage.process(Captured(0, 0.0, frame))
        finally:
            estimator.close()
        assert m.found
        assert isinstance(m.mouth, MouthPatch) if cut else m.mouth is None


@needs_shared
def test_the_renderer_shows_the_driver_s_mouth_only_in_an_open_mouth():
    """The Mona Lisa (mouth closed): at rest the photo itself comes back with a driver's mouth given; jaw open, the
    driver's inside (lp_d0's teeth) replaces part of the drawn one."""
    from live.warp.driver_mouth import cut_mouth
    from live.warp.renderer import WarpRenderer
    from live.warp.create_avatar import create_warp_avatar
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    renderer = WarpRenderer(create_warp_avatar(MEDIA / "portrait_mona_lisa.jpg"),
                            ParameterSpace(PARAM_NAMES, model.param_range), model)
    patch = cut_mouth(*_tracked("lp_d0.mp4", 30))
    rest = np.zeros(len(PARAM_NAMES))
    assert np.array_equal(renderer(rest, None, patch), renderer.photo)
    open_ = rest.copy()
    open_[PARAM_NAMES.index("jaw")] = 2.5
    delta = open_ * renderer.space.to_norm
    drawn, driven = renderer(delta), renderer(delta, None, patch)
    inside = _inside(renderer.mesh(open_), drawn.shape)
    changed = (np.abs(drawn.astype(int) - driven.astype(int)).max(-1) > 20)
    assert changed[inside].mean() > 0.3, changed[inside].mean()
    assert not changed[~cv2.dilate(inside.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)].any()


@needs_shared
def test_live_run_s_mouth_option_changes_the_mouth_and_nothing_else(tmp_path):
    """End to end: a talking clip (lp_d0, teeth showing) drives the Mona Lisa with each option; the outputs differ
    in some frames, and only around the mouth."""
    from live.cli import main
    me = tmp_path / "me.pt"
    assert main(["avatar", "create", str(MEDIA / "portrait_mona_lisa.jpg"), "--renderer", "warp", "-o", str(me)]) == 0
    clip = write_clip(MEDIA / "lp_d0.mp4", tmp_path / "clip.mp4", 45)
    videos = {}
    for mouth in ("driver", "drawn"):
        out, stats = tmp_path / f"{mouth}.mp4", tmp_path / f"{mouth}.json"
        assert main(["run", "-a", str(me), "--source", str(clip), "--fast", "--mouth", mouth, "--sink", f"file:{out}",
                     "--stats", str(stats)]) == 0
        assert json.loads(stats.read_text())["written"] == 45
        cap = cv2.VideoCapture(str(out))
        videos[mouth] = [f for ok, f in iter(cap.read, (False, None)) if ok]
        cap.release()
    assert len(videos["driver"]) == len(videos["drawn"]) == 45
    changed = [np.abs(a.astype(int) - b.astype(int)).max(-1) > 24 for a, b in zip(videos["driver"], videos["drawn"])]
    assert sum(c.any() for c in changed) >= 5, "the driver's mouth never showed"
    assert max(c.mean() for c in changed) < 0.02, "more than the mouth changed"


@needs_shared
def test_bench_quality_measures_the_warp_s_mouth_against_the_driver_s(tmp_path):
    """`python -m bench quality --renderer warp --mouth driver` on a short talking clip: both protocols report the
    mouth region's PSNR (self) and the teeth columns, and the record says which mouth it measured."""
    from bench.__main__ import main
    write_clip(MEDIA / "lp_d0.mp4", tmp_path / "d0.mp4", 40)
    (tmp_path / "mona.jpg").symlink_to(MEDIA / "portrait_mona_lisa.jpg")
    out = tmp_path / "q"
    assert main(["quality", "--renderer", "warp", "--mouth", "driver", "--media", str(tmp_path), "--clips", "d0.mp4",
                 "--portraits", "mona.jpg", "--drivers", "d0.mp4", "--frames", "4", "--out", str(out),
                 "--json", str(tmp_path / "r.json")]) == 0
    record = json.loads((out / "summary.json").read_text())
    assert record["mouth"] == "driver"
    rows = {(r["protocol"], r["method"]): r for r in record["summary"]}
    assert rows[("self", "output")]["mouth_psnr"] > 15 and rows[("cross", "output")]["mouth_psnr"] is None
    for key in (("self", "output"), ("cross", "output")):
        assert 0 <= rows[key]["teeth_agree"] <= 1
    header = (out / "frames.csv").read_text().splitlines()[0].split(",")
    assert {"teeth", "teeth_target", "mouth_psnr"} <= set(header)
