"""Face tracking: a frame in, one face's 3D landmarks (in pixels) out, or an explicit "not found".

The CPU backend is mediapipe 0.10.21's face mesh, whose wheel bundles the detection and mesh
models (nothing is downloaded). Several faces: the largest is chosen when tracking starts,
then the one nearest to the last position is followed.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 478  # face mesh with refined eyes and lips (468 + 10 iris points)


@dataclass(frozen=True)
class FaceObservation:
    """One frame's tracking result. `landmarks` is [478, 3]: x, y in pixels, z in pixels
    (mediapipe's depth, relative to the head centre, on the scale of x)."""

    found: bool
    landmarks: np.ndarray | None = None
    confidence: float = 0.0
    box: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in pixels
    n_faces: int = 0

    @classmethod
    def not_found(cls) -> "FaceObservation":
        return cls(found=False)


class Tracker(ABC):
    @abstractmethod
    def track(self, frame_rgb: np.ndarray) -> FaceObservation: ...

    def reset(self) -> None:
        """Forget the followed face (the next frame starts from the largest)."""

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_frame(frame: np.ndarray) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        shape = getattr(frame, "shape", None)
        dtype = getattr(frame, "dtype", type(frame).__name__)
        raise ValueError(f"tracker takes an RGB frame [H, W, 3] of uint8, got shape {shape} dtype {dtype}")
    if frame.shape[0] < 32 or frame.shape[1] < 32:
        raise ValueError(f"frame of {frame.shape[1]}x{frame.shape[0]} px is too small to find a face in")


def _box(points: np.ndarray) -> tuple[float, float, float, float]:
    x0, y0 = points[:, :2].min(0)
    x1, y1 = points[:, :2].max(0)
    return float(x0), float(y0), float(x1), float(y1)


def _area(box) -> float:
    return max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)


def _centre(box) -> np.ndarray:
    return np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])


class MediaPipeTracker(Tracker):
    """mediapipe face mesh on the CPU. `video=True` reuses the last landmarks as the next ROI."""

    def __init__(self, max_faces: int = 2, video: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ start-up chatter
        from mediapipe.python.solution_base import SolutionBase
        from mediapipe.python.solutions import face_mesh

        class _FaceMesh(SolutionBase):
            # The stock FaceMesh exposes only landmarks; the same graph also gives the detections
            # (with their scores), which is where the confidence comes from.
            def __init__(self):
                super().__init__(
                    binary_graph_path=face_mesh._BINARYPB_FILE_PATH,
                    side_inputs={"num_faces": max_faces, "with_attention": True, "use_prev_landmarks": video},
                    calculator_params={
                        "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                        "TensorsToDetectionsCalculator.min_score_thresh": min_detection_confidence,
                        "facelandmarkcpu__ThresholdingCalculator.threshold": min_tracking_confidence,
                    },
                    outputs=["multi_face_landmarks", "face_detections"])

        self._mesh = _FaceMesh()
        self._last_centre: np.ndarray | None = None
        self._last_confidence = 0.0

    def reset(self) -> None:
        self._last_centre = None
        self._last_confidence = 0.0
        if self._mesh is not None:
            self._mesh.reset()  # also drops mediapipe's own previous-frame landmarks

    def close(self) -> None:
        if self._mesh is not None:
            self._mesh.close()
            self._mesh = None

    def track(self, frame_rgb: np.ndarray) -> FaceObservation:
        check_frame(frame_rgb)
        if self._mesh is None:
            raise RuntimeError("tracker is closed")
        h, w = frame_rgb.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(frame_rgb))
        faces = result.multi_face_landmarks or []
        if not faces:
            self._last_centre = None
            return FaceObservation.not_found()
        candidates = []
        for face in faces:
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
            candidates.append((pts, _box(pts)))
        if self._last_centre is None:
            pts, box = max(candidates, key=lambda c: _area(c[1]))
        else:
            pts, box = min(candidates, key=lambda c: np.linalg.norm(_centre(c[1]) - self._last_centre))
        self._last_centre = _centre(box)
        confidence = self._detection_score(result, box, w, h)
        return FaceObservation(found=True, landmarks=pts, confidence=confidence, box=box, n_faces=len(faces))

    def _detection_score(self, result, box, w: int, h: int) -> float:
        """Score of the detection whose box contains the face centre; while the face is only
        tracked (no new detection), the last score carries over."""
        cx, cy = _centre(box)
        for det in result.face_detections or []:
            rb = det.location_data.relative_bounding_box
            x0, y0 = rb.xmin * w, rb.ymin * h
            if x0 <= cx <= x0 + rb.width * w and y0 <= cy <= y0 + rb.height * h:
                self._last_confidence = float(det.score[0])
                break
        return self._last_confidence
