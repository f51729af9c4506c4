"""Tracking whole clips: every frame's landmarks, and the face shape model built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from loguru import logger

from live.io.sources import iter_video_rgb, video_frame_count
from models.atomic_files import atomic_path
from models.face.shape_model import FaceModel
from models.face.shape_model_build import build_face_model
from models.face.tracker import MediaPipeTracker

DEFAULT_CLIPS = ("lp_d0.mp4", "lp_d3.mp4", "lp_d6.mp4", "lp_d10.mp4", "vox_driving.mp4")


def track_clip(path: Path, tracker, max_side: int = 720, progress=None) -> np.ndarray:
    """All frames where a face is found -> [F, 478, 3] landmarks in pixels."""
    tracker.reset()
    out = []
    for _, _, frame in iter_video_rgb(path):
        if progress is not None:
            progress()
        h, w = frame.shape[:2]
        if max(h, w) > max_side:
            import cv2
            f = max_side / max(h, w)
            frame = cv2.resize(frame, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
        obs = tracker.track(frame)
        if obs.found:
            out.append(obs.landmarks)
    return np.asarray(out, dtype=np.float64)


def build_from_footage(media_dir: str | Path, clips: tuple[str, ...] = DEFAULT_CLIPS,
                       out: str | Path | None = None) -> FaceModel:
    """Track the clips (every frame with a face: neutral talking, exaggerated expressions and head
    turns of five people, all of it useful) and build the model. The raw tracker is used here:
    flip averaging needs the mirror map that this very build produces, and the mirrored copies
    added in step 3 make the model symmetric anyway."""
    from rich.progress import Progress
    media_dir = Path(media_dir)
    paths = [media_dir / c for c in clips]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"footage not found: {', '.join(missing)}")
    landmarks = {}
    with MediaPipeTracker(max_faces=1, flip_average=False) as tracker, Progress() as bar:
        task = bar.add_task("tracking footage", total=sum(video_frame_count(p) for p in paths))
        for p in paths:
            landmarks[p.name] = track_clip(p, tracker, progress=lambda: bar.advance(task))
    model = build_face_model(landmarks)
    if out is not None:
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            model.save(f)
        logger.info("wrote {}", out)
    return model
