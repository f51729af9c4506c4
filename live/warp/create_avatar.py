"""Making a warp avatar from a photo: the photo (downscaled), the tracker's mesh of its face, its parameters, and
how its glances are seen (live/warp/gaze_response.py). The file it is saved as: live/warp/warp_avatar.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
from loguru import logger

from live.avatar.avatar_file import AvatarError
from live.warp.gaze_response import GazeResponse
from live.warp.warp_avatar import WarpAvatar
from models.face.landmarks import PARAM_NAMES

MAX_SIDE = 720          # larger photos are downscaled: detail beyond this is not seen in a video call
MIN_FACE = 64           # px across: smaller faces warp into mush


def create_warp_avatar(photo_path: str | Path, face_index: int = 0) -> WarpAvatar:
    """The photo (downscaled), its face's mesh and parameters, and how its glances are seen: a few seconds' work."""
    import cv2

    from live.avatar.create import find_face
    from live.avatar.face_reader import TrackerFaceReader
    from live.io.sources import read_image_rgb
    from models.face.shape_model import FaceModel
    from models.face.tracker import MediaPipeTracker
    photo = read_image_rgb(photo_path)
    scale = MAX_SIDE / max(photo.shape[:2])
    if scale < 1:
        logger.info("{}: {}x{} px, downscaled to {} px on its longer side", photo_path, photo.shape[1],
                    photo.shape[0], MAX_SIDE)
        photo = cv2.resize(photo, (round(photo.shape[1] * scale), round(photo.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    rough, n_faces = find_face(photo, face_index, str(photo_path), TrackerFaceReader(max(face_index + 1, 4)))
    model = FaceModel.load()
    with MediaPipeTracker(max_faces=max(n_faces, 1), video=False, mirror_index=model.mirror) as tracker:
        obs = tracker.track(photo)          # flip-averaged: the most accurate mesh of the largest face
        marks = obs.landmarks.astype(np.float64) if obs.found and face_index == 0 else rough.astype(np.float64)
        _check_face(marks, photo.shape, str(photo_path))
        avatar = WarpAvatar(photo=photo, landmarks=marks, p_s=model.fit(marks).params,
                            created=dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
                            source_photo=str(photo_path), faces_in_photo=n_faces)
        avatar.gaze_seen_across = _seen_gaze(avatar, model, tracker)
    if avatar.gaze_seen_across is not None and GazeResponse(avatar.gaze_seen_across).seen_across is None:
        avatar.gaze_seen_across = None      # a table the renderer would not use is not kept as if it were
    if avatar.gaze_seen_across is None:
        logger.warning("{}: the tracker did not see this face's irises move; its eyes follow the driver's gaze as "
                       "read (they look less far aside than the driver's)", photo_path)
    return avatar


def _seen_gaze(avatar: WarpAvatar, model, tracker) -> np.ndarray | None:
    """The avatar's across gaze table (live/warp/gaze_response.py), tracked on the whole render as a driver's camera
    frame is (the tracker reads a crop's irises differently: up to 0.02 eye widths), or, where the photo has other
    faces, on a crop around this one (`tracker`: the one that tracked the photo, flip-averaged)."""
    from live.warp.gaze_response import measure_seen_across
    from live.warp.renderer import WarpRenderer
    from models.face.params import ParameterSpace
    renderer = WarpRenderer(avatar, ParameterSpace(PARAM_NAMES, model.param_range), model)
    h, w = avatar.photo.shape[:2]
    x0, y0, x1, y1 = 0, 0, w, h
    if avatar.faces_in_photo > 1:
        lo, hi = avatar.landmarks[:, :2].min(0), avatar.landmarks[:, :2].max(0)
        centre, half = 0.5 * (lo + hi), 0.8 * float(np.max(hi - lo))
        x0, y0 = np.maximum(np.floor(centre - half), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(centre + half), [w, h]).astype(int)
    rest = np.zeros(len(PARAM_NAMES))

    def track(frame):
        obs = tracker.track(np.ascontiguousarray(frame[y0:y1, x0:x1]))
        return obs.landmarks if obs.found else None
    return measure_seen_across(lambda gaze: renderer(rest, gaze), track)


def _check_face(marks: np.ndarray, shape, source: str) -> None:
    h, w = shape[:2]
    x0, y0 = marks[:, :2].min(0)
    x1, y1 = marks[:, :2].max(0)
    if max(x1 - x0, y1 - y0) < MIN_FACE:
        raise AvatarError(f"{source}: the face is {max(x1 - x0, y1 - y0):.0f} px across, too small to animate "
                          f"(at least {MIN_FACE}); use a photo where the face is larger")
    margin = 0.02 * max(h, w)
    if x0 < -margin or y0 < -margin or x1 > w + margin or y1 > h + margin:
        raise AvatarError(f"{source}: the face is cut by the photo's edge; use a photo with the whole face in it")
