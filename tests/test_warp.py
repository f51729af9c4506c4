"""The mesh-warp renderer: the backward map, the avatar file, bad photos, and what it draws (tracked)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from loguru import logger

from kernels.triangle_map import triangle_map
from live.avatar.avatar_file import AvatarError
from models.face.landmarks import PARAM_NAMES
from tests.conftest import SHARED, needs_shared, write_clip

MEDIA = SHARED / "media"


# -- the backward map ---------------------------------------------------------------------------------------
def _grid_mesh(n: int, w: int, h: int, jitter: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.linspace(-1, w, n), np.linspace(-1, h, n))
    src = np.stack([xs.ravel(), ys.ravel()], 1)
    inner = (xs.ravel() > 0) & (xs.ravel() < w - 1) & (ys.ravel() > 0) & (ys.ravel() < h - 1)
    dst = src + inner[:, None] * rng.normal(0, jitter, src.shape)
    tris = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            tris += [(a, b, d), (a, d, c)]
    return dst, src, np.array(tris)


@pytest.mark.parametrize("w, h, n", [(64, 48, 5), (37, 91, 8), (1, 1, 2), (120, 7, 4)])
def test_numba_map_equals_reference_and_leaves_no_cracks(w, h, n):
    dst, src, tris = _grid_mesh(n, w, h, jitter=1.5)
    ref = triangle_map(dst, src, tris, h, w, impl="ref")
    fast = triangle_map(dst, src, tris, h, w, impl="numba")
    assert np.allclose(ref[0], fast[0], atol=1e-4) and np.allclose(ref[1], fast[1], atol=1e-4)
    assert (fast[0] >= -0.5).all(), "a pixel no triangle covers: a crack"


def test_numba_map_covers_the_same_pixels_as_the_reference_for_slivers_and_large_triangles():
    """The fast kernel skips each row's columns outside the triangle: slivers, near-horizontal and vertical edges,
    corners on pixel centres and triangles far larger than the frame cover exactly the reference's pixels."""
    rng = np.random.default_rng(3)
    h, w = 40, 56
    points = [rng.uniform(-30, 90, (60, 2)),                               # large, partly outside the frame
              np.round(rng.uniform(0, 55, (60, 2))),                       # corners on pixel centres
              rng.uniform(0, 55, (60, 2)) * [1, 0.02] + [0, 20]]           # slivers along a row
    dst = np.concatenate(points)
    tris = rng.integers(0, len(dst), (400, 3))
    tris = np.concatenate([tris, [[0, 1, 2], [60, 61, 62]], [[120 + i, 121 + i, 122 + i] for i in range(20)]])
    dst[63] = [dst[60, 0], dst[60, 1] + 17]                                  # a vertical edge
    tris = np.concatenate([tris, [[60, 63, 64]]])
    src = rng.uniform(0, 50, dst.shape)
    ref = triangle_map(dst, src, tris, h, w, impl="ref")
    fast = triangle_map(dst, src, tris, h, w, impl="numba")
    assert np.array_equal(ref[0] < -0.5, fast[0] < -0.5)
    assert np.abs(ref[0] - fast[0]).max() < 1e-4 and np.abs(ref[1] - fast[1]).max() < 1e-4


@pytest.mark.parametrize("width", [56, 400])
def test_numba_map_keeps_the_pixels_of_needles(width):
    """Needles: two corners 1e-8 px apart, one on a pixel centre, the third far off. Their weights are huge away from
    the triangle, and a column range taken from them at x = 0, or the third weight as 1 minus the others, lost the
    pixel on the corner that the reference draws."""
    rng = np.random.default_rng(width)
    h = 40
    for i in range(300):
        b = np.array([rng.integers(width // 2, width - 1), rng.integers(1, h - 1)], float)
        a = b + [rng.choice([-1, 1]) * 10 ** rng.uniform(-10, -8), rng.choice([-1, 1]) * 10 ** rng.uniform(-15, -11)]
        c = b + rng.uniform(5, 30, 2) * rng.choice([-1, 1], 2)
        dst = np.array([a, b, c])
        src = rng.uniform(0, 50, (3, 2))
        ref = triangle_map(dst, src, np.array([[0, 1, 2]]), h, width, impl="ref")
        fast = triangle_map(dst, src, np.array([[0, 1, 2]]), h, width, impl="numba")
        assert np.array_equal(ref[0] < -0.5, fast[0] < -0.5), (i, dst.tolist())
    dst = np.array([[28.999999997531518, 23.000000000000004], [29.0, 23.0], [6.511477652140556, 4.483378598657453]])
    ref = triangle_map(dst, np.ones((3, 2)), np.array([[0, 1, 2]]), 40, 56, impl="ref")
    fast = triangle_map(dst, np.ones((3, 2)), np.array([[0, 1, 2]]), 40, 56, impl="numba")
    assert np.array_equal(ref[0] < -0.5, fast[0] < -0.5)


def test_identity_mesh_maps_every_pixel_to_itself():
    dst, src, tris = _grid_mesh(6, 50, 40, jitter=0.0)
    mx, my = triangle_map(dst, src, tris, 40, 50)
    ys, xs = np.mgrid[0:40, 0:50]
    assert np.abs(mx - xs).max() < 1e-4 and np.abs(my - ys).max() < 1e-4


def test_later_triangles_cover_earlier_ones():
    src = np.array([[0, 0], [20, 0], [0, 20], [5, 5], [25, 5], [5, 25]], float)
    dst = np.array([[0, 0], [20, 0], [0, 20], [0, 0], [20, 0], [0, 20]], float)   # two on top of each other
    mx, _ = triangle_map(dst, src, np.array([[0, 1, 2], [3, 4, 5]]), 21, 21)
    assert mx[2, 2] == pytest.approx(7.0)            # read from the second triangle's source (offset 5)
    with pytest.raises(ValueError, match="triangle indices"):
        triangle_map(dst, src, np.array([[0, 1, 9]]), 21, 21)


def test_mesh_topology_has_the_four_holes():
    from models.face.mesh_topology import boundary_loops, eye_fans, face_triangles
    loops = boundary_loops()
    assert {k: len(v) for k, v in loops.items()} == {"oval": 36, "mouth": 20, "eye_left": 16, "eye_right": 16}
    assert face_triangles().shape[1] == 3 and len(face_triangles()) > 800 and eye_fans().shape == (32, 3)


# -- the avatar and bad photos --------------------------------------------------------------------------------

@needs_shared
def test_warp_avatar_roundtrip_and_tampering(tmp_path):
    from live.warp.create_avatar import create_warp_avatar
    from live.warp.warp_avatar import load_warp_avatar
    avatar = create_warp_avatar(MEDIA / "portrait_mona_lisa.jpg")
    assert max(avatar.photo.shape[:2]) == 720 and avatar.landmarks.shape == (478, 3)   # downscaled from 1280
    path = avatar.save(tmp_path / "me.pt")
    again = load_warp_avatar(path)
    assert np.array_equal(again.photo, avatar.photo) and np.allclose(again.p_s, avatar.p_s)
    assert np.allclose(again.gaze_seen_across, avatar.gaze_seen_across, atol=1e-6)
    assert avatar.gaze_seen_across[-1] - avatar.gaze_seen_across[0] > 0.1     # its glances were seen to move
    data = bytearray(path.read_bytes())
    import torch
    d = torch.load(path, weights_only=True)
    d["p_s"][0] += 1
    torch.save(d, tmp_path / "tampered.pt")
    with pytest.raises(AvatarError, match="modified after it was written"):
        load_warp_avatar(tmp_path / "tampered.pt")
    from live.avatar.avatar_file import content_digest
    del d["gaze_seen_across"], d["digest"]
    d["p_s"][0] -= 1
    d["digest"] = content_digest(d)
    torch.save(d, tmp_path / "before_gaze_tables.pt")       # made before avatars had one: loads, drawn as read
    assert load_warp_avatar(tmp_path / "before_gaze_tables.pt").gaze_seen_across is None
    d["gaze_seen_across"] = torch.zeros(3)
    d["digest"] = content_digest({k: v for k, v in d.items() if k != "digest"})
    torch.save(d, tmp_path / "short_table.pt")
    with pytest.raises(AvatarError, match="gaze table"):
        load_warp_avatar(tmp_path / "short_table.pt")
    (tmp_path / "half.pt").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(AvatarError, match="truncated"):
        load_warp_avatar(tmp_path / "half.pt")


@needs_shared
def test_bad_photos_get_clear_messages_or_sane_results(tmp_path, capsys):
    from PIL import Image

    from live.cli import main
    portrait = cv2.imread(str(MEDIA / "portrait_bouguereau.jpg"))
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((300, 300, 3), 127, np.uint8))
    assert main(["avatar", "create", str(tmp_path / "wall.png"), "-o", str(tmp_path / "a.pt")]) == 2
    assert "no face found" in capsys.readouterr().err
    assert main(["avatar", "create", str(MEDIA / "portrait_bouguereau.jpg"), "-o", str(tmp_path)]) == 2
    assert "give the avatar file's name, such as -o" in capsys.readouterr().err      # a folder: said before any work
    assert main(["run", "--avatar", str(MEDIA / "portrait_bouguereau.jpg"), "--frames", "1", "--sink", "null"]) == 2
    assert "is a photo, not an avatar: make one from it with `live avatar create" in capsys.readouterr().err
    cv2.imwrite(str(tmp_path / "tiny.png"), cv2.resize(portrait, (90, 90), interpolation=cv2.INTER_AREA))
    assert main(["avatar", "create", str(tmp_path / "tiny.png"), "-o", str(tmp_path / "a.pt")]) == 2
    err = capsys.readouterr().err         # read once: a second read finds the buffer already emptied
    assert "too small" in err or "no face found" in err, err
    two = np.concatenate([portrait, portrait[:, ::-1]], axis=1)                     # two people

    cv2.imwrite(str(tmp_path / "two.png"), two)
    assert main(["avatar", "create", str(tmp_path / "two.png"), "-o", str(tmp_path / "two.pt")]) == 0
    assert "2 face(s) found" in capsys.readouterr().out
    grey = cv2.cvtColor(portrait, cv2.COLOR_BGR2GRAY)
    cv2.imwrite(str(tmp_path / "grey.png"), grey)                                  # one channel
    Image.open(str(MEDIA / "portrait_bouguereau.jpg")).convert("CMYK").save(tmp_path / "cmyk.jpg")
    cv2.imwrite(str(tmp_path / "huge.png"), cv2.resize(portrait, (3000, 3000)))
    for name in ("grey.png", "cmyk.jpg", "huge.png"):
        assert main(["avatar", "create", str(tmp_path / name), "-o", str(tmp_path / f"{name}.pt")]) == 0, name


# -- what it draws --------------------------------------------------------------------------------------------
@needs_shared
@pytest.mark.parametrize("portrait", ["portrait_mona_lisa.jpg", "portrait_einstein.jpg"])
def test_sweeps_are_drawn_as_asked(portrait):
    """Known answer: each requested change, tracked on the output. Measured on all four portraits by
    `python -m bench warp` (bench/RESULTS.md); the bounds are the issue's."""
    from bench.warp_sweeps import sweep, sweep_requests
    from live.warp.renderer import WarpRenderer
    from live.warp.create_avatar import create_warp_avatar
    from models.face.params import ImageParams, ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    avatar = create_warp_avatar(MEDIA / portrait)
    renderer = WarpRenderer(avatar, ParameterSpace(PARAM_NAMES, model.param_range), model)
    p95 = {"jaw": 1.883, "blink_left": 2.131, "blink_right": 2.286}      # of the test clips (bench warp measures it)
    with ImageParams(model) as tracker:
        rows = {n: sweep(renderer, tracker, n, v) for n, v in sweep_requests(avatar.p_s, p95, 7).items()}
    for name in ("yaw", "roll"):
        assert 0.8 <= rows[name]["slope"] <= 1.2 and rows[name]["pearson"] >= 0.95, rows[name]
    # pitch: Einstein 0.79 since hair and neck turn with the head (0.84 when they stayed put, with a seam at the
    # hairline): the tracker reads a head tilting inside a still frame as more tilt
    assert 0.75 <= rows["pitch"]["slope"] <= 1.2 and rows["pitch"]["pearson"] >= 0.95, rows["pitch"]
    # jaw: 0.80 on the Mona Lisa with the drawn mouth (0.81 with the old dark fill): the tracker reads the drawn
    # upper teeth partly as lip, as it does a real speaker's
    assert 0.75 <= rows["jaw"]["slope"] <= 1.2 and rows["jaw"]["pearson"] >= 0.95, rows["jaw"]
    for name in ("yaw", "pitch", "roll"):
        assert rows[name]["cross_talk"] < 0.2, rows[name]
    for name in ("blink_left", "blink_right"):
        # 0.96 / 0.96 and 1.00 / 1.13 here; 0.26-0.69 when the closing lid was the photo's few pixels of lid stretched
        # over the eye, the brows came down with it and the lids met only past the tracker's shut reading
        # (live/warp/eyes.py)
        assert 0.8 <= rows[name]["slope"] <= 1.3 and rows[name]["pearson"] >= 0.9, rows[name]


@pytest.mark.slow
@needs_shared
def test_a_warp_avatar_follows_its_driver_through_the_loop(tmp_path):
    """The loop's plumbing with a renderer that can follow: track -> smooth -> delta_p -> warp -> track again."""
    from live.cli import main
    from models.face.params import ImageParams
    me = tmp_path / "me.pt"
    assert main(["avatar", "create", str(MEDIA / "portrait_mona_lisa.jpg"), "--renderer", "warp", "-o", str(me)]) == 0
    clip = write_clip(MEDIA / "vox_driving.mp4", tmp_path / "clip.mp4", 150)
    out, stats = tmp_path / "out.mp4", tmp_path / "s.json"
    assert main(["run", "-a", str(me), "--source", str(clip), "--fast", "--sink", f"file+driver:{out}",
                 "--size", "640x640", "--stats", str(stats)]) == 0
    r = json.loads(stats.read_text())
    assert r["written"] == 150 and r["frames_in"] == r["written"] + r["dropped"]
    cap = cv2.VideoCapture(str(out))
    driver, avatar = [], []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        rgb = np.ascontiguousarray(frame[:, :, ::-1])
        driver.append(np.ascontiguousarray(rgb[:, : rgb.shape[1] - 640]))
        avatar.append(np.ascontiguousarray(rgb[:, -640:]))
    with ImageParams() as tracker:
        pd, _ = tracker(np.stack(driver))
        pa, _ = tracker(np.stack(avatar))
    ok = np.isfinite(pd).all(1) & np.isfinite(pa).all(1)
    assert ok.mean() > 0.95
    # measured 0.96, 0.84, 0.97, 0.60: pitch moves little in this clip, and the closed-mouthed painting cannot
    # close its mouth further when the speaker's does (bench/RESULTS.md)
    for name, bound in (("yaw", 0.9), ("pitch", 0.75), ("roll", 0.9), ("jaw", 0.5)):
        k = PARAM_NAMES.index(name)
        assert np.corrcoef(pd[ok, k], pa[ok, k])[0, 1] > bound, name


@needs_shared
def test_the_first_run_shows_a_face_that_talks(tmp_path):
    """The README's main command, shortened: no generator, camera or avatar -> the bundled painting, warped
    by the synthetic driver. The tracker finds a face in the output, and its jaw follows the driver's."""
    from live.cli import main
    from live.pipeline.capture import synthetic_params
    from models.face.params import ImageParams
    out, stats = tmp_path / "live-demo.mp4", tmp_path / "s.json"
    assert main(["run", "--frames", "75", "--sink", f"file:{out}", "--stats", str(stats)]) == 0
    per_frame = json.loads(stats.read_text())["per_frame"]
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(np.ascontiguousarray(frame[:, :, ::-1]))
    # The file plays at the source's rate: a frame the loop dropped (a busy machine) is held there, so the file
    # holds the source's frames 0..last, and written frame `index` is file frame `index`.
    assert len(per_frame) == 75 and len(frames) == per_frame[-1][0] + 1
    with ImageParams() as tracker:
        params, _ = tracker(np.stack([frames[index] for index, *_ in per_frame]))
    found = np.isfinite(params).all(1)
    assert found.mean() >= 0.95
    driver_jaw = np.array([synthetic_params(index / 25.0)[3] for index, *_ in per_frame])
    assert np.corrcoef(driver_jaw[found], params[found, 3])[0, 1] >= 0.8


# -- eyes, mouth and head: what the warp draws beyond the mesh ------------------------------------------------
def _renderer(portrait: str):
    from live.warp.renderer import WarpRenderer
    from live.warp.create_avatar import create_warp_avatar
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    return WarpRenderer(create_warp_avatar(MEDIA / portrait), ParameterSpace(PARAM_NAMES, model.param_range), model)


def _delta(renderer, **raw) -> np.ndarray:
    d = np.zeros(len(PARAM_NAMES))
    for name, value in raw.items():
        d[PARAM_NAMES.index(name)] = value
    return d * renderer.space.to_norm


def test_gaze_is_measured_in_eye_widths_along_the_eyes():
    from models.face.gaze import measure_gaze
    from models.face.landmarks import EYE_LEFT, EYE_RIGHT
    from models.face.mesh_topology import IRIS_CENTRES
    marks = np.zeros((478, 3))
    for eye, iris, x in ((EYE_RIGHT, IRIS_CENTRES["eye_right"], 100.0), (EYE_LEFT, IRIS_CENTRES["eye_left"], 200.0)):
        marks[eye["outer"], :2], marks[eye["inner"], :2] = (x - 20, 50), (x + 20, 50)   # 40 px wide eyes
        marks[iris, :2] = (x + 4, 50 - 2)                                              # 0.1 right, 0.05 up
    assert np.allclose(measure_gaze(marks), [0.1, -0.05])
    angle = np.radians(30)                     # the same eyes on a tilted head: the same gaze
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    tilted = marks.copy()
    tilted[:, :2] = marks[:, :2] @ rot.T
    assert np.allclose(measure_gaze(tilted), [0.1, -0.05])


def test_gaze_follows_from_the_neutral_and_camera_mode_keeps_eye_contact():
    from live.pipeline.gaze_follow import GazeFollower
    from models.face.mesh_topology import IRIS_CENTRES
    marks = np.zeros((478, 3))
    for outer, inner, iris, x in ((33, 133, IRIS_CENTRES["eye_right"], 100.0), (263, 362, IRIS_CENTRES["eye_left"], 200.0)):
        marks[outer, :2], marks[inner, :2], marks[iris, :2] = (x - 20, 50), (x + 20, 50), (x, 52)  # looks a bit down

    def look(dx):
        m = marks.copy()
        m[[468, 473], 0] += dx
        return m

    follow, camera = GazeFollower("follow"), GazeFollower("camera")
    t = 0.0
    for _ in range(31):                        # the neutral second: the photo's gaze meanwhile
        assert follow(look(0.0), t) is None and camera(look(0.0), t) is None
        t += 1 / 30
    for _ in range(60):
        t += 1 / 30
        g = follow(look(8.0), t)               # a glance 0.2 eye widths to the right, held
        assert camera(look(8.0), t) is None
    assert g[0] == pytest.approx(0.2, abs=0.01) and abs(g[1]) < 0.01     # relative to the neutral: no "down"
    with pytest.raises(ValueError, match="follow, camera"):
        GazeFollower("sideways")


@needs_shared
@pytest.mark.parametrize("portrait", ["portrait_mona_lisa.jpg", "portrait_einstein.jpg"])
def test_a_requested_gaze_is_tracked_on_the_avatar(portrait):
    """The driver's glance reads on the avatar as the driver's: tracked on the output, the gaze moves as asked
    across (within the avatar's eye), and down. Drawn as read (before each avatar's gaze table), the glance read
    0.38-0.56 of it."""
    from models.face.gaze import measure_gaze
    from models.face.tracker import MediaPipeTracker
    renderer = _renderer(portrait)
    asked = [(0.0, 0.0), (0.05, 0.0), (-0.05, 0.0), (0.0, 0.08)]
    with MediaPipeTracker(max_faces=1, video=False) as tracker:
        got = [measure_gaze(tracker.track(renderer(_delta(renderer), np.array(g))).landmarks) for g in asked]
    moved = np.array(got[1:]) - got[0]
    assert 0.035 < moved[0, 0] < 0.07 and -0.07 < moved[1, 0] < -0.035, moved      # right and left, as asked
    # down: a fifth of the asked move (the lids cover the iris's top and bottom, and the warp does not lower the
    # lids with the glance: live/warp/gaze_response.py); `python -m bench warp` has the slopes
    assert moved[2, 1] > 0.01, moved
    assert np.abs(moved[:2, 1]).max() < 0.03, moved                   # a glance across does not look down


def test_the_gaze_table_draws_the_move_that_is_seen_as_the_driver_s():
    from live.warp.gaze_response import DRAWN_ACROSS, GazeResponse
    seen = 0.5 * DRAWN_ACROSS                                   # an avatar whose glances read half as far
    seen[2] = seen[1] - 0.001                                   # a tracker's wobble: not a step back
    response = GazeResponse(seen)
    assert np.allclose(response(np.array([0.05, 0.03])), [0.1, 0.03])       # down drawn as read
    assert np.allclose(response(np.array([-0.3, 0.0]))[0], DRAWN_ACROSS[0])  # no further than the table
    assert np.all(np.diff(response.seen_across) >= 0) and np.isfinite(response(np.array([-0.08, 0.0]))).all()
    assert response(None) is None
    # a noisy side (drawn left, read a little right) or one that read nothing: looking ahead stays looking ahead
    for uneven in ([-0.1, -0.05, -0.02, 0.004, 0, 0.02, 0.05, 0.08, 0.1], [-0.1, -0.05, -0.02, -0.01, 0, 0, 0, 0, 0],
                   [0, 0, 0, 0, 0, 0.02, 0.05, 0.08, 0.1]):
        table = GazeResponse(np.array(uneven))
        assert table.seen_across is not None and table(np.zeros(2))[0] == 0.0, uneven
        assert table(np.array([0.01, 0.0]))[0] >= 0 and table(np.array([-0.01, 0.0]))[0] <= 0, uneven
    for unusable in (None, np.zeros(len(DRAWN_ACROSS)), np.full(len(DRAWN_ACROSS), np.nan), seen[:4]):
        assert np.array_equal(GazeResponse(unusable)(np.array([0.05, 0.0])), [0.05, 0.0])   # drawn as read


@needs_shared
def test_a_gaze_table_the_renderer_would_not_use_is_not_kept(monkeypatch):
    """A measured table too flat to use (the tracker did not see the irises move) is dropped with the warning that
    says the eyes follow the gaze as read, instead of being kept in the file as if it drew."""
    import live.warp.create_avatar as create
    from live.warp.gaze_response import DRAWN_ACROSS
    monkeypatch.setattr(create, "_seen_gaze", lambda *a: 0.001 * DRAWN_ACROSS)
    messages = []
    handle = logger.add(lambda m: messages.append(m.record["message"]), level="WARNING")
    try:
        avatar = create.create_warp_avatar(MEDIA / "portrait_einstein.jpg")
    finally:
        logger.remove(handle)
    assert avatar.gaze_seen_across is None
    assert any("did not see this face's irises move" in m for m in messages), messages


@needs_shared
@pytest.mark.parametrize("portrait", ["portrait_vermeer.jpg", "portrait_einstein.jpg"])
def test_a_far_glance_keeps_each_iris_inside_its_eye(portrait):
    """Asked to look further than the eyes allow, both irises stop when the first one's rim reaches its eyeball's
    outline (the photo's), and stay inside theirs: past it, the triangles between rim and outline fold and the iris was pressed into a dark sliver at
    the corner (Vermeer's near eye at 0.22 eye widths)."""
    import cv2

    from live.warp.eyes import EYES, LID_CREASE
    from models.face.gaze import eye_axes
    renderer = _renderer(portrait)
    eyes = renderer.eyes
    src2d = np.asarray(renderer.mesh(np.zeros(len(PARAM_NAMES))))[:, :2]
    for sign in (-1.0, 1.0):
        placed = eyes.place(renderer.mesh(np.zeros(len(PARAM_NAMES))), np.array([sign, 0.0]))
        rims = placed[len(eyes.vertices):].reshape(len(EYES), -1, 2)
        for (name, eye), rim in zip(EYES, rims):
            _, right, _, width = eye_axes(src2d, eye)
            outline = np.concatenate([eye_points for eye_points in (src2d[list(LID_CREASE[name])],
                                      src2d[[eye["outer"], eye["inner"], eye["upper"], eye["lower"]]])])
            hull = cv2.convexHull(outline.astype(np.float32))
            lead = rim[np.argmax(rim @ (sign * right))]
            assert cv2.pointPolygonTest(hull, (float(lead[0]), float(lead[1])), True) > 0, (name, sign)


@needs_shared
def test_a_closed_photo_mouth_opens_onto_teeth_in_its_own_light():
    """Jaw open: the mouth hole is not a flat dark fill; it has bright teeth pixels near the photo's eye whites."""
    from live.warp.mouth_interior import eye_white_colour
    from models.face.mesh_topology import boundary_loops
    renderer = _renderer("portrait_mona_lisa.jpg")
    assert renderer.mouth_interior is not None, "the Mona Lisa's mouth is closed: the inside must be drawn"
    rest = renderer(_delta(renderer))
    assert np.array_equal(rest, renderer.photo), "with nothing asked the photo itself comes back"
    delta = _delta(renderer, jaw=2.5)
    frame = renderer(delta)
    lips = renderer.mesh(delta / renderer.space.to_norm)[boundary_loops()["mouth"], :2]
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(lips).astype(np.int32)], 255)
    mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
    inside = frame[mask > 0].astype(float)
    luma = inside @ [0.299, 0.587, 0.114]
    white = eye_white_colour(renderer.photo, np.c_[renderer.src2d, np.zeros(len(renderer.src2d))])
    assert luma.std() > 25, "a flat fill"
    teeth = np.linalg.norm(inside - white * [0.93, 0.91, 0.84], axis=1) < 40
    assert teeth.mean() > 0.05 and luma.min() < 40, (teeth.mean(), luma.min())     # teeth, and a dark throat


@needs_shared
def test_a_full_blink_closes_the_eye_without_folding_it():
    """Asked far past closed, the lids meet and stay met; the iris does not change colour on the way."""
    renderer = _renderer("portrait_bouguereau.jpg")
    for value in (1.5, 4.0, 12.0):
        delta = _delta(renderer, blink_left=value, blink_right=value)
        face = renderer.mesh(delta / renderer.space.to_norm)[:, :2].copy()
        renderer._close_lids(face)
        for eye, upper, lower, _ in renderer.lids:
            a, b = face[eye["outer"]], face[eye["inner"]]
            axis = (b - a) / np.linalg.norm(b - a)
            normal = np.array([-axis[1], axis[0]])
            normal *= np.sign(normal @ (face[152] - face[10]))         # down the face: chin minus forehead
            lx, ly = (face[lower] - a) @ axis, (face[lower] - a) @ normal
            ux, uy = (face[upper] - a) @ axis, (face[upper] - a) @ normal
            floor = np.interp(ux, np.sort(lx), ly[np.argsort(lx)])
            assert (uy <= floor + 1e-6).all(), value                 # no upper lid point below the lower lid
        frame = renderer(delta)
        assert np.isfinite(frame).all()
    iris = renderer.src2d[[468, 473]].round().astype(int)
    half = renderer(_delta(renderer, blink_left=1.0, blink_right=1.0))
    # the iris centre, still uncovered half-way, keeps the photo's colour (no flat paint over the eye)
    for x, y in iris:
        assert np.abs(half[y, x].astype(int) - renderer.photo[y, x]).max() < 30


@needs_shared
@pytest.mark.parametrize("portrait", ["portrait_vermeer.jpg", "portrait_einstein.jpg"])
def test_a_driver_s_full_blink_shuts_the_eye_as_a_blink(portrait):
    """The blink the tracker reads on real shut eyes (the footage's 99th percentile) shuts the avatar's eyes, a
    little less leaves them open; the upper lid does the travelling (a lower lid pushed up is a squint); the shut
    lid is skin with a dark lash line, not the eye's white or iris."""
    from models.face.gaze import eye_axes
    renderer = _renderer(portrait)
    own = renderer.model.fit(np.c_[renderer.src2d, renderer.landmarks_z]).params
    shut = {n: renderer.model.param_range[PARAM_NAMES.index(n), 1] - own[PARAM_NAMES.index(n)]
            for n in ("blink_left", "blink_right")}

    def gaps(scale):
        face = renderer.mesh(_delta(renderer, **{n: scale * v for n, v in shut.items()}) / renderer.space.to_norm)
        face2d = face[:, :2].copy()
        renderer._close_lids(face2d)
        out = []
        for eye, _, _, _ in renderer.lids:
            _, _, down, width = eye_axes(face2d, eye)           # across the eye (its middle points may be offset along)
            out.append((face2d[eye["lower"]] - face2d[eye["upper"]]) @ down / width)
        return out

    open_gaps = gaps(0.0)
    assert max(gaps(1.0)) < 0.02, gaps(1.0)                           # met (within the mesh's own offsets)
    assert min(np.subtract(open_gaps, gaps(0.7))) > 0 and min(gaps(0.7)) > 0.05, gaps(0.7)   # closing, not shut
    still = renderer.mesh(np.zeros(len(PARAM_NAMES)))[:, :2]
    moved = renderer.mesh(_delta(renderer, **shut) / renderer.space.to_norm)[:, :2]
    for eye, _, _, _ in renderer.lids:
        upper, lower = (np.linalg.norm(moved[eye[k]] - still[eye[k]]) for k in ("upper", "lower"))
        assert lower < 0.3 * upper, (upper, lower)
    from live.warp.mouth_interior import eye_white_colour
    from models.face.mesh_topology import IRIS_CENTRES
    frame = renderer(_delta(renderer, **shut))
    white = eye_white_colour(renderer.photo, np.c_[renderer.src2d, renderer.landmarks_z])
    face2d = renderer.mesh(_delta(renderer, **shut) / renderer.space.to_norm)[:, :2].copy()
    renderer._close_lids(face2d)
    for (eye, _, _, _), name, skin in zip(renderer.lids, ("eye_left", "eye_right"), renderer.lid_painter.skin):
        # the shut lid a little above its edge: the photo's lid skin, not its iris or eye white
        width = np.linalg.norm(face2d[eye["outer"]] - face2d[eye["inner"]])
        x, y = np.round(face2d[eye["upper"]] - [0, 0.08 * width]).astype(int)
        drawn = frame[y, x].astype(float)
        iris = renderer.photo[tuple(np.round(renderer.src2d[IRIS_CENTRES[name]][::-1]).astype(int))].astype(float)
        to_skin = np.linalg.norm(drawn - skin.mean(0))
        assert to_skin < np.linalg.norm(drawn - iris) and to_skin < np.linalg.norm(drawn - white), (drawn, skin.mean(0))
        x, y = np.round(face2d[eye["upper"]]).astype(int)
        lash = (frame[y - 2:y + 3, x - 2:x + 3] @ [0.299, 0.587, 0.114]).min()
        assert lash < 0.6 * (drawn @ [0.299, 0.587, 0.114]), lash          # the lash line is the darkest line


@needs_shared
def test_hair_and_neck_move_with_a_turning_head():
    """Just outside the face's outline, the picture moves as the outline does (no seam at the temple)."""
    renderer = _renderer("portrait_einstein.jpg")
    delta_raw = _delta(renderer, yaw=20.0) / renderer.space.to_norm
    first = renderer.ring_level == 0                                                 # the first ring
    face = renderer.mesh(delta_raw)[renderer.oval, :2]
    outline_moved = face - renderer.src2d[renderer.oval]
    ring_moved = renderer._ring_motion(delta_raw)[first]
    above = renderer.ring_share[first] == renderer.ring_share[first].max()
    nearest = [np.argmin(np.linalg.norm(renderer.src2d[renderer.oval] - p, axis=1)) for p in renderer.ring_src[first]]
    along = outline_moved[nearest]
    share = (ring_moved * along).sum(1) / (along**2).sum(1)
    # the first ring lies a little back from the outline (the skull curves away): measured 0.6-0.9 of the
    # outline's move; before, hair at the head centre's depth moved 0.1-0.3 of it and a seam opened
    assert share[above].min() > 0.5, share[above]


def test_the_resting_pose_of_a_talking_second_has_closed_lips():
    from live.pipeline.motion import resting_pose
    rng = np.random.default_rng(0)
    talking = rng.normal(0, 0.1, (30, len(PARAM_NAMES)))
    jaw = PARAM_NAMES.index("jaw")
    talking[:, jaw] = np.where(np.arange(30) % 3 == 0, -1.0, 1.5)       # closed between syllables, else open
    rest = resting_pose(talking, list(PARAM_NAMES))
    assert rest[jaw] == pytest.approx(-1.0)
    # without the lips gate (no landmarks: a recorded track) the median, or a calm jaw would sit above rest
    assert resting_pose(talking, list(PARAM_NAMES), lips_gated=False)[jaw] == pytest.approx(np.median(talking[:, jaw]))
    others = [k for k in range(len(PARAM_NAMES)) if k != jaw]
    assert np.allclose(rest[others], np.median(talking, axis=0)[others])


@needs_shared
def test_a_mouth_asked_to_close_beyond_closed_stays_closed():
    """A closed photo mouth with a negative jaw: the lips meet, they do not cross into a dark slit."""
    renderer = _renderer("portrait_einstein.jpg")
    delta = _delta(renderer, jaw=-1.5)
    face = renderer.mesh(delta / renderer.space.to_norm)[:, :2].copy()
    (a_index, b_index), upper, lower, (up, low) = renderer.closures.items[-1]
    down = face[152] - face[10]
    crossed_before = (face[low] - face[up]) @ down < 0
    renderer._close_lids(face)
    assert crossed_before, "the basis alone crosses the lips here: the case this test is for"
    assert (face[low] - face[up]) @ down / np.linalg.norm(down) >= -0.5
    frame = renderer(delta)
    lips = face[renderer.mouth]
    x0, y0 = np.floor(lips.min(0)).astype(int)
    x1, y1 = np.ceil(lips.max(0)).astype(int)
    photo_dark = (renderer.photo[y0:y1, x0:x1].astype(float) @ [0.299, 0.587, 0.114] < 40).mean()
    frame_dark = (frame[y0:y1, x0:x1].astype(float) @ [0.299, 0.587, 0.114] < 40).mean()
    assert frame_dark <= photo_dark + 0.05, (frame_dark, photo_dark)   # no dark slit painted in


@pytest.mark.slow
@needs_shared
def test_a_calm_driver_leaves_the_mouth_calm():
    """vox_driving and lp_d10 where the lips are closed and the head still, through the relative mode: the
    avatar's mouth opens beyond its rest by no more than the driver's lips are apart, plus 0.05 mouth widths
    (the issue's bound). It opened by 0.10 before (the resting pose of a talking second, the 3D jaw
    coefficient reading closed lips as open, and lips crossing into a slit)."""
    from bench.warp_sweeps import calm_check, track_driver
    from models.face.tracker import MediaPipeTracker
    drivers = [track_driver(MEDIA / clip) for clip in ("vox_driving.mp4", "lp_d10.mp4")]
    with MediaPipeTracker(max_faces=1, video=False) as tracker:
        for portrait in ("portrait_vermeer.jpg", "portrait_einstein.jpg"):
            row = calm_check(_renderer(portrait), tracker, drivers, every=2)
            assert int(row["tracked"].split("/")[0]) >= 8, (portrait, row)
            assert row["calm_max"] <= 0.05, (portrait, row)


@needs_shared
@pytest.mark.parametrize("portrait", ["portrait_einstein.jpg", "portrait_vermeer.jpg"])
def test_every_pixel_of_a_turned_head_has_a_source(portrait, monkeypatch):
    """Almost every pixel of the frame has a triangle, and one without shows the photo's own pixel (before,
    it read the photo's corner): at rest, turned, tilted, with the mouth open and the eyes shut."""
    import live.warp.renderer as warp
    uncovered = []

    def counted(*args, **kwargs):
        bare = {k: v for k, v in kwargs.items() if k != "uncovered"}
        map_x, _ = triangle_map(*args, **bare)
        hole = map_x < -0.5                                   # -1: no triangle (x = 0 may read -1e-16)
        uncovered.append(int(hole.sum()))
        return triangle_map(*args, **kwargs)

    renderer = _renderer(portrait)
    monkeypatch.setattr(warp, "triangle_map", counted)       # the frames' maps (not the one the plate is built with)
    for ask in ({}, {"yaw": 20.0}, {"yaw": -20.0}, {"pitch": 15.0}, {"roll": -20.0}, {"jaw": 3.0},
                {"blink_left": 4.0, "blink_right": 4.0}):
        frame = renderer(_delta(renderer, **ask))
        if not ask:
            assert np.array_equal(frame, renderer.photo)
    assert max(uncovered) < 0.001 * renderer.h * renderer.w, uncovered
    # and where there is one, the map reads the photo at that very pixel (not its corner, as -1 did)
    map_x, map_y = warp.triangle_map(np.zeros((3, 2)), np.zeros((3, 2)), np.zeros((0, 3), int), 4, 5,
                                     uncovered=renderer.identity if renderer.identity[0].shape == (4, 5) else
                                     tuple(m[:4, :5].copy() for m in renderer.identity))
    assert np.array_equal(map_x, np.tile(np.arange(5), (4, 1))) and np.array_equal(map_y, np.tile(np.arange(4)[:, None], (1, 5)))


def test_a_user_s_full_blink_is_the_avatar_s_full_blink_through_the_motion_stage():
    """Relative mode: the user's eyes rest at 0.6 (shut reads 2.6), the photo's wide-open ones at -0.6. The user's
    full blink takes the avatar to shut, half of it half-way; a widening and everything else are copied as they
    are; the absolute mode is the driver's own value."""
    from live.pipeline.messages import Captured
    from live.pipeline.motion import Controls, MotionStage, retarget_blinks
    from live.pipeline.slots import LatestSlot
    from models.face.params import ParameterSpace
    left, right = PARAM_NAMES.index("blink_left"), PARAM_NAMES.index("blink_right")
    span = np.array([[-6.0, 6.0]] * len(PARAM_NAMES))
    span[[left, right], 1] = 2.6
    space = ParameterSpace(PARAM_NAMES, span)
    own, rest = np.zeros(len(PARAM_NAMES)), np.zeros(len(PARAM_NAMES))
    own[[left, right]], rest[[left, right]] = -0.6, 0.6
    rest[0] = 3.0

    class Recorded:              # a recorded track needs no tracker
        def __call__(self, *args):
            raise AssertionError
    def stage_for(retarget, driven=None):
        return MotionStage(LatestSlot("a"), LatestSlot("b"), Recorded(), None, space, own, Controls(), rest.copy(),
                           0.5, 0.5, retarget=retarget, driven=driven)
    stage = stage_for(True)
    for blink, expected in ((2.6, 3.2), (1.6, 1.6), (0.1, -0.5)):       # shut, half-way, wider
        driver = rest.copy()
        driver[[left, right]] = blink
        driver[0] = 13.0
        stage.process(Captured(0, 0.0, None, params=driver))
        raw = stage.last_delta / space.to_norm
        assert raw[left] == pytest.approx(expected) and raw[right] == pytest.approx(expected), blink
        assert raw[0] == pytest.approx(10.0)
    stage.controls.absolute = True
    stage.process(Captured(1, 0.04, None, params=driver))
    assert (stage.last_delta / space.to_norm)[left] == pytest.approx(0.1 + 0.6)
    # a StyleGAN2 avatar (no retargeting) gets the change as it is; an eye left undriven stays still
    shut = rest.copy()
    shut[[left, right]] = 2.6
    plain, one_eye = stage_for(False), stage_for(True, driven=["blink_left"])
    for s in (plain, one_eye):
        s.process(Captured(0, 0.0, None, params=shut))
    assert (plain.last_delta / space.to_norm)[left] == pytest.approx(2.0)
    assert (one_eye.last_delta / space.to_norm)[left] == pytest.approx(3.2) and one_eye.last_delta[right] == 0.0
    # the eyes blink together (the tracker parts a turned head's eyes by up to 1.5), a wink stays one
    apart, wink = np.zeros(len(PARAM_NAMES)), np.zeros(len(PARAM_NAMES))
    apart[[left, right]], wink[[left, right]] = (1.0, 0.2), (2.6, 0.0)
    together = retarget_blinks(apart, list(PARAM_NAMES), np.zeros(len(PARAM_NAMES)), np.zeros(len(PARAM_NAMES)), span[:, 1])
    assert together[left] == pytest.approx(0.6) and together[right] == pytest.approx(0.6)
    winked = retarget_blinks(wink, list(PARAM_NAMES), np.zeros(len(PARAM_NAMES)), np.zeros(len(PARAM_NAMES)), span[:, 1])
    assert winked[left] == pytest.approx(2.6) and winked[right] == 0.0
    wink[[left, right]] = (2.0, 0.0)                                          # half-way between linked and a wink
    half = retarget_blinks(wink, list(PARAM_NAMES), np.zeros(len(PARAM_NAMES)), np.zeros(len(PARAM_NAMES)), span[:, 1])
    assert half[left] == pytest.approx(1.5) and half[right] == pytest.approx(0.5)
    # a photo with its eyes nearly shut has little room: its blink is scaled down, at most to half, and smoothly
    nearly = [retarget_blinks(np.ones(len(PARAM_NAMES)), list(PARAM_NAMES), rest, np.full(len(PARAM_NAMES), o),
                              span[:, 1])[left] for o in (2.34, 2.36, 2.5)]
    assert nearly == pytest.approx([0.5, 0.5, 0.5])


def test_the_lips_gate_follows_the_driver_s_visible_lips():
    from live.pipeline.motion import LIPS_APART, LIPS_TOUCH, lips_gate
    jaw = PARAM_NAMES.index("jaw")
    delta = np.zeros(len(PARAM_NAMES))
    delta[jaw], delta[0] = 2.0, 5.0
    assert lips_gate(delta, 0.0, jaw)[jaw] == 0.0                    # closed lips open nothing
    assert lips_gate(delta, LIPS_APART + 0.01, jaw)[jaw] == 2.0      # clearly parted: all of it
    assert 0 < lips_gate(delta, 0.5 * (LIPS_TOUCH + LIPS_APART), jaw)[jaw] < 2.0
    assert lips_gate(delta, 0.0, jaw)[0] == 5.0                      # nothing else is touched
    delta[jaw] = -1.0
    assert lips_gate(delta, 0.0, jaw)[jaw] == 0.0                    # shut lips, shut at rest: not closing
    assert lips_gate(delta, 0.0, jaw, rest_gap=0.12)[jaw] == -1.0    # shut now, open at rest: closing
    assert lips_gate(delta, 0.2, jaw)[jaw] == -1.0                   # parted but less than at rest: as tracked
    assert lips_gate(delta, None, jaw)[jaw] == -1.0                  # no landmarks (a recorded track): as tracked
    assert lips_gate(delta, 0.0, jaw, rest_gap=None)[jaw] == -1.0    # absolute mode: closing from the photo's


@needs_shared
def test_each_eyeball_covers_both_corners_of_its_eye():
    from live.warp.eyes import EYES
    renderer = _renderer("portrait_bouguereau.jpg")
    for _, eye in EYES:
        assert {eye["outer"], eye["inner"]} <= set(renderer.eyes.vertices.tolist())
    assert len(renderer.eyes.vertices) == len(set(renderer.eyes.vertices.tolist()))        # each vertex once


def test_the_reference_map_keeps_the_uncovered_maps_exactly_as_numba_does():
    dst, src, tris = _grid_mesh(5, 40, 30, jitter=1.0)
    tris = tris[: len(tris) // 2]                         # half the frame covered
    src = src - 0.8                                       # sources in [-1.8, ...): below -0.5 but covered
    ys, xs = np.indices((30, 40), dtype=np.float32)
    ref = triangle_map(dst, src, tris, 30, 40, impl="ref", uncovered=(xs, ys))
    fast = triangle_map(dst, src, tris, 30, 40, impl="numba", uncovered=(xs, ys))
    assert np.allclose(ref[0], fast[0], atol=1e-4) and np.allclose(ref[1], fast[1], atol=1e-4)
    assert (ref[0] < -0.5).any()                          # covered pixels reading left of the frame stay so


@needs_shared
def test_a_turned_photo_s_far_cheek_is_drawn_once_not_again_beside_the_face():
    """Vermeer's far cheek lies outside the mesh's outline (the outline runs behind it). Turned toward the camera,
    the background beside the face carried that cheek, the eye's corner and its lashes a second time (a doubled
    eye corner and a seam: the streaks of the demo's frames 20-65, 6% of the face's area drawn twice): the
    background layer now reads a plate with them painted out. A frontal photo's plate is the photo itself."""
    from bench.warp_sweeps import doubling_check
    from live.warp.create_avatar import create_warp_avatar
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    space = ParameterSpace(PARAM_NAMES, model.param_range)
    avatar = create_warp_avatar(MEDIA / "portrait_vermeer.jpg")
    assert doubling_check(avatar, space, model, steps=5)["doubled_max"] < 0.002
    assert len(_renderer("portrait_bouguereau.jpg").plate.painted_rows) == 0      # a frontal photo: nothing painted


@needs_shared
def test_a_face_past_the_photo_s_edge_reads_the_photo_never_the_plate():
    """A face may reach 2% past the photo's edge. The plate lies beside the photo in one source image: the face's
    triangles reading past the edge must read the photo's replicated edge, not the plate (before, a dark crescent
    on the cheek of a face cut by the right edge)."""
    from dataclasses import replace
    from live.warp.renderer import WarpRenderer
    from live.warp.create_avatar import create_warp_avatar
    from models.face.mesh_topology import face_triangles
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    avatar = create_warp_avatar(MEDIA / "portrait_vermeer.jpg")
    right = int(avatar.landmarks[:, 0].max()) - 8                   # the face's near cheek 8-9 px past the edge
    cut = replace(avatar, photo=np.ascontiguousarray(avatar.photo[:, :right]))
    renderer = WarpRenderer(cut, ParameterSpace(PARAM_NAMES, model.param_range), model)
    renderer.plate.sources[:, renderer.plate.offset - renderer.plate.pad:] = (0, 255, 0)    # the plate, marked
    delta = _delta(renderer, yaw=-20.0)
    frame = renderer(delta).astype(int)
    covered, _ = triangle_map(renderer.mesh(delta / renderer.space.to_norm)[:, :2], renderer.src2d, face_triangles(),
                              renderer.h, renderer.w)
    face = cv2.erode((covered > -0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    green = (frame[..., 1] > 200) & (frame[..., 0] < 60) & (frame[..., 2] < 60)
    assert not (green & face).any(), int((green & face).sum())


@needs_shared
def test_the_plate_is_painted_as_the_head_turns_and_is_the_photo_at_rest_and_for_expressions():
    """The plate (the far cheek and the sliver beyond the face's triangles painted out) is painted as the head turns;
    at rest and for an expression alone (the shape model's blink moves the outline a few pixels) it is the photo,
    and the frame is what it was without a plate."""
    renderer = _renderer("portrait_vermeer.jpg")
    pl = renderer.plate
    assert len(pl.painted_rows) > 0
    plate = lambda: pl.sources[:, pl.offset:][pl.painted_rows, pl.painted_cols]  # noqa: E731
    photo = renderer.photo[pl.painted_rows, pl.painted_cols]
    renderer(_delta(renderer, yaw=15.0))
    pad = pl.sources[:, pl.offset - pl.pad:pl.offset]
    assert np.array_equal(pad, np.repeat(pl.sources[:, pl.offset:pl.offset + 1], pl.pad, 1)), "the pad: its edge"
    painted = np.abs(plate().astype(int) - photo).max(1) > 20
    assert painted.mean() > 0.3, painted.mean()            # bright skin against a dark ground: most of it changes
    renderer(_delta(renderer, blink_right=3.0, jaw=1.0))
    assert np.array_equal(plate(), photo)
    assert np.array_equal(renderer(_delta(renderer)), renderer.photo)


@needs_shared
def test_the_image_only_iris_locator_reads_a_glance_as_the_tracker_does():
    """bench/iris_locator.py, the gaze rows' check that does not share the tracker's iris points: on the avatar it
    reads a glance aside in the same direction and by about the same amount as the tracker (0.8-1.2 of it on the
    portraits), and nothing where the eyes did not move."""
    from bench.iris_locator import locate_gaze
    from models.face.gaze import measure_gaze
    from models.face.tracker import MediaPipeTracker
    renderer = _renderer("portrait_einstein.jpg")
    frames = [renderer(_delta(renderer), np.array([g, 0.0])) for g in (0.0, 0.06, -0.06)]
    with MediaPipeTracker(max_faces=1, video=False) as tracker:
        marks = [tracker.track(f).landmarks for f in frames]
    image = np.array([locate_gaze(f, m) for f, m in zip(frames, marks)])
    tracked = np.array([measure_gaze(m) for m in marks])
    moved_image, moved_tracked = image[1:, 0] - image[0, 0], tracked[1:, 0] - tracked[0, 0]
    assert moved_image[0] > 0.03 and moved_image[1] < -0.03, moved_image
    assert np.all(np.abs(moved_image - moved_tracked) < 0.5 * np.abs(moved_tracked)), (moved_image, moved_tracked)
    still = locate_gaze(frames[0], marks[0] + 0.2)                 # the same eyes, the outline shifted 0.2 px
    assert np.allclose(still, image[0], atol=0.01)
