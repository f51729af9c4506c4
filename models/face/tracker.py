"""Face tracking: a frame in, one face's 3D landmarks (in pixels) out, or an explicit "not found".

The CPU backend is mediapipe 0.10.21's face mesh, whose wheel bundles the detection and mesh
models (nothing is downloaded). Several faces: the largest is chosen when tracking starts,
then the one nearest to the last position is followed.
"""

from __future__ import annotations

import os
import types
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
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


def _candidates(result, w: int, h: int) -> list[tuple[np.ndarray, tuple]]:
    out = []
    for face in result.multi_face_landmarks or []:
        pts = np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
        out.append((pts, _box(pts)))
    return out


def _unmirror(points: np.ndarray, width: int, mirror_index: np.ndarray) -> np.ndarray:
    back = points[mirror_index].copy()
    back[:, 0] = width - back[:, 0]
    return back


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (_area(a) + _area(b) - inter + 1e-9)


def mesh_mirror_index() -> np.ndarray:
    """Index of each mesh landmark's left-right partner, from the shipped face model."""
    from models.face.shape_model import FaceModel
    return FaceModel.load().mirror


class MediaPipeTracker(Tracker):
    """mediapipe face mesh on the CPU. `video=True` reuses the last landmarks as the next ROI.

    flip_average: also track the mirror image of each frame with a second, identical graph
    (on a second thread) and average the two landmark sets, the mirror's mapped back. The
    mesh network is not mirror-symmetric by itself; averaging makes tracking exactly
    left-right equivariant (a flipped video gives mirrored landmarks) and halves the noise.
    """

    def __init__(self, max_faces: int = 2, video: bool = True, min_detection_confidence: float = 0.5,
                 min_tracking_confidence: float = 0.5, flip_average: bool = True,
                 mirror_index: np.ndarray | None = None):
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

            def process(self, image: np.ndarray):
                """SolutionBase.process without its cost: it defines a new namedtuple class on every call
                (and sets the results on that class), which only the cyclic collector frees; over an
                hour that was most of the loop's memory growth. A plain object per call instead."""
                self._graph_outputs.clear()
                self._simulated_timestamp += 33333    # 30 fps, as SolutionBase simulates
                stream, kind = next(iter(self._input_stream_type_info.items()))
                self._graph.add_packet_to_input_stream(
                    stream=stream, packet=self._make_packet(kind, image).at(self._simulated_timestamp))
                self._graph.wait_until_idle()
                return types.SimpleNamespace(**{
                    name: (self._get_packet_content(kind, self._graph_outputs[name])
                           if name in self._graph_outputs else None)
                    for name, kind in self._output_stream_type_info.items()})

        self._mesh = _FaceMesh()
        self._mirror_mesh = _FaceMesh() if flip_average else None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mirror-mesh") if flip_average else None
        # The landmark mirror map comes from the face model in use; by default the shipped one.
        if flip_average:
            self._mirror_index = mirror_index if mirror_index is not None else mesh_mirror_index()
        else:
            self._mirror_index = None
        self._last_centre: np.ndarray | None = None
        self._last_confidence = 0.0

    @property
    def flip_average(self) -> bool:
        return self._mirror_mesh is not None

    def stop_flip_average(self) -> None:
        """Track the frame alone from now on (a slow CPU's first economy: live/pipeline/tracking_budget.py)."""
        if self._mirror_mesh is not None:
            self._mirror_mesh.close()
            self._mirror_mesh = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def reset(self) -> None:
        self._last_centre = None
        self._last_confidence = 0.0
        for mesh in (self._mesh, self._mirror_mesh):
            if mesh is not None:
                mesh.reset()  # also drops mediapipe's own previous-frame landmarks

    def close(self) -> None:
        for mesh in (self._mesh, self._mirror_mesh):
            if mesh is not None:
                mesh.close()
        self._mesh = self._mirror_mesh = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def track(self, frame_rgb: np.ndarray) -> FaceObservation:
        check_frame(frame_rgb)
        if self._mesh is None:
            raise RuntimeError("tracker is closed")
        h, w = frame_rgb.shape[:2]
        mirror_job = None
        if self._mirror_mesh is not None:
            mirrored = np.ascontiguousarray(frame_rgb[:, ::-1])
            mirror_job = self._pool.submit(self._mirror_mesh.process, mirrored)
        result = self._mesh.process(np.ascontiguousarray(frame_rgb))
        mirror_result = mirror_job.result() if mirror_job is not None else None
        candidates = _candidates(result, w, h)
        if not candidates:
            self._last_centre = None
            return FaceObservation.not_found()
        if self._last_centre is None:
            pts, box = max(candidates, key=lambda c: _area(c[1]))
        else:
            pts, box = min(candidates, key=lambda c: np.linalg.norm(_centre(c[1]) - self._last_centre))
        if mirror_result is not None:
            # The mirror graph's landmarks, mapped back into this frame: x -> w - x, and each
            # landmark index to its mirror partner (the subject's left eye is the mirror's right).
            back = [_unmirror(p, w, self._mirror_index) for p, _ in _candidates(mirror_result, w, h)]
            back = [(p, _box(p)) for p in back]
            if back:
                twin, twin_box = min(back, key=lambda c: np.linalg.norm(_centre(c[1]) - _centre(box)))
                if _iou(twin_box, box) > 0.5:
                    pts = 0.5 * (pts + twin)
                    box = _box(pts)
        self._last_centre = _centre(box)
        confidence = self._detection_score(result, box, w, h)
        return FaceObservation(found=True, landmarks=pts, confidence=confidence, box=box, n_faces=len(candidates))

    def detect_faces(self, frame_rgb: np.ndarray) -> list[FaceObservation]:
        """Every face in one still image, largest first (no following, no flip averaging)."""
        check_frame(frame_rgb)
        if self._mesh is None:
            raise RuntimeError("tracker is closed")
        h, w = frame_rgb.shape[:2]
        self._mesh.reset()
        result = self._mesh.process(np.ascontiguousarray(frame_rgb))
        faces = sorted(_candidates(result, w, h), key=lambda c: -_area(c[1]))
        return [FaceObservation(found=True, landmarks=pts, confidence=1.0, box=box, n_faces=len(faces))
                for pts, box in faces]

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
