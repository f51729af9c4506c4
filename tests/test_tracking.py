"""The mediapipe tracker on real footage: pixels out, explicit not-found, one face followed."""

import numpy as np
import pytest

from live.io.sources import SourceError, iter_video_rgb, read_image_rgb
from models.face.tracker import N_LANDMARKS, MediaPipeTracker
from tests.conftest import SHARED, needs_shared

pytestmark = needs_shared
MEDIA = SHARED / "media"


@pytest.fixture(scope="module")
def tracker():
    with MediaPipeTracker() as t:
        yield t


def test_real_face_in_pixels(tracker):
    tracker.reset()
    img = read_image_rgb(MEDIA / "vox_source.png")
    obs = tracker.track(img)
    assert obs.found and obs.landmarks.shape == (N_LANDMARKS, 3)
    h, w = img.shape[:2]
    x0, y0, x1, y1 = obs.box
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert 0.5 < obs.confidence <= 1.0
    assert 80 < x1 - x0 < w / 2  # a head, in pixels, not normalised units


def test_no_face_is_explicit(tracker):
    tracker.reset()
    blank = np.full((480, 640, 3), 127, np.uint8)
    obs = tracker.track(blank)
    assert not obs.found and obs.landmarks is None and obs.box is None


def test_bad_frames_get_clear_errors(tracker):
    with pytest.raises(ValueError, match=r"RGB frame \[H, W, 3\] of uint8"):
        tracker.track(np.zeros((480, 640), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        tracker.track(np.zeros((480, 640, 3), np.float32))
    with pytest.raises(ValueError, match="too small"):
        tracker.track(np.zeros((8, 8, 3), np.uint8))


def test_two_faces_largest_first_then_followed(tracker):
    tracker.reset()
    import cv2
    src = read_image_rgb(MEDIA / "vox_source.png")
    x0, y0, x1, y1 = tracker.track(src).box
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * max(x1 - x0, y1 - y0)
    face = src[int(cy - half):int(cy + half), int(cx - half):int(cx + half)]

    def canvas(left: int, right: int) -> np.ndarray:
        c = np.full((360, 640, 3), 90, np.uint8)
        c[20:20 + left, 10:10 + left] = cv2.resize(face, (left, left))
        c[20:20 + right, 630 - right:630] = cv2.resize(face, (right, right))
        return c

    tracker.reset()
    obs = tracker.track(canvas(310, 270))
    assert obs.found and obs.n_faces == 2 and obs.box[2] < 320  # the larger, left face
    for left, right in [(300, 280), (290, 290), (280, 300), (270, 310)]:
        obs = tracker.track(canvas(left, right))  # the right one becomes the larger...
        assert obs.found and obs.box[2] < 320  # ...but the followed face stays the left one
    tracker.reset()
    obs = tracker.track(canvas(270, 310))
    assert obs.n_faces == 2 and obs.box[0] > 320  # after a reset: the largest again


def test_clip_frames_found(tracker):
    tracker.reset()
    found = [tracker.track(f).found for _, _, f in iter_video_rgb(MEDIA / "lp_d3.mp4", size=(640, 480), max_frames=60)]
    assert len(found) == 60 and all(found)


def test_missing_video_and_image(tmp_path):
    with pytest.raises(SourceError, match="no such video"):
        list(iter_video_rgb(tmp_path / "none.mp4"))
    with pytest.raises(SourceError, match="cannot read image"):
        read_image_rgb(tmp_path / "none.png")


def test_a_photo_cut_short_or_not_a_photo_is_named_for_what_it_is(tmp_path):
    """A JPEG or PNG cut short (a download that stopped) is refused before decoding, where its missing part would be
    grey and the face not found; an empty file, a folder and a text file each get their own words."""
    import cv2
    photo = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)
    for ext in (".jpg", ".png"):
        whole = cv2.imencode(ext, photo)[1].tobytes()
        (tmp_path / f"whole{ext}").write_bytes(whole)
        assert read_image_rgb(tmp_path / f"whole{ext}").shape == (64, 64, 3)
        (tmp_path / f"half{ext}").write_bytes(whole[: len(whole) // 2])
        with pytest.raises(SourceError, match="cut short"):
            read_image_rgb(tmp_path / f"half{ext}")
        # whatever follows a whole image is its own business: a phone's motion photo (a video after the JPEG), a
        # cropped screenshot's old data after the PNG
        (tmp_path / f"tail{ext}").write_bytes(whole + b"\x00\x00\x00\x18ftypmp42" + bytes(200_000))
        assert read_image_rgb(tmp_path / f"tail{ext}").shape == (64, 64, 3)
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not a photo")
    for name, words in (("empty.jpg", "is empty"), ("notes.jpg", "not a JPEG, PNG or WebP"), (".", "is a folder"),
                        ("none.jpg", "check the path")):
        with pytest.raises(SourceError, match=words):
            read_image_rgb(tmp_path / name)
