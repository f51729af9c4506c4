"""Avatar creation's questions to the tracker, recorded and replayed (machines without MediaPipe)."""

from __future__ import annotations

import numpy as np
import pytest

from live.avatar.face_reader import RecordingFaceReader, ReplayFaceReader, TrackerFaceReader
from live.io.sources import read_image_rgb
from tests.conftest import SHARED, needs_shared

pytestmark = needs_shared


def test_a_replay_answers_as_the_tracker_did_and_knows_nothing_else(tmp_path):
    photo = read_image_rgb(SHARED / "media" / "portrait_vermeer.jpg")
    other = read_image_rgb(SHARED / "media" / "portrait_einstein.jpg")
    recorder = RecordingFaceReader(TrackerFaceReader())
    faces = recorder.find_faces(photo)
    crop = np.ascontiguousarray(photo[380:720, 280:620])     # around the face
    params = recorder.params(np.stack([crop]))
    recorder.close()
    assert len(faces) == 1 and np.isfinite(params).all()
    path = recorder.save(tmp_path / "faces.npz")
    replay = ReplayFaceReader(path)
    again = replay.find_faces(photo)
    assert len(again) == 1 and np.allclose(again[0], faces[0], atol=1e-3)
    assert np.allclose(replay.params(crop[None]), params)
    # The same picture decoded or resampled a little differently is still recognised...
    noisy = np.clip(photo.astype(int) + np.random.default_rng(0).integers(-2, 3, photo.shape), 0, 255).astype(np.uint8)
    assert len(replay.find_faces(noisy)) == 1
    # ...another picture is not: no face, no parameters, as for a real miss.
    assert replay.find_faces(other) == [] and np.isnan(replay.params(np.stack([other[:256, :256]]))).all()
    assert np.isnan(replay.params(np.stack([photo[:256, :256]]))).all()   # a photo is not a parameters entry


def test_a_foreign_recording_is_refused_with_the_fix(tmp_path):
    from live.avatar.avatar_file import AvatarError
    bad = tmp_path / "faces.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(AvatarError, match="not a recording of face-tracker answers.*gpu-carry"):
        ReplayFaceReader(bad)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(AvatarError, match="not a recording"):
        ReplayFaceReader(tmp_path / "text.npz")


def test_an_avatar_made_from_a_replay_matches_one_made_with_the_tracker(tmp_path, face128):
    from live.avatar.create import AvatarOptions, create_avatar
    from live.avatar.invert import InversionConfig
    opts = AvatarOptions(framing="fixture", pti=False, inversion=InversionConfig(steps=2), progress=False)
    photo = SHARED / "media" / "vox_source.png"
    recorder = RecordingFaceReader(TrackerFaceReader())
    made, _ = create_avatar(photo, face128, opts, faces=recorder)
    replayed, report = create_avatar(photo, face128, opts, faces=ReplayFaceReader(recorder.save(tmp_path / "f.npz")))
    assert np.allclose(made.crop_matrix, replayed.crop_matrix)
    assert np.array_equal(made.crop, replayed.crop)
    assert np.allclose(made.p_s.numpy(), replayed.p_s.numpy())
