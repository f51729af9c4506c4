"""What avatar creation asks of the face tracker, behind one small interface, recordable.

Creating an avatar asks the tracker two things: the faces in the photo (landmarks, to crop it
in the generator's framing) and the face parameters of an image (p_s, of the reconstruction or
of the crop). `TrackerFaceReader` answers with MediaPipe. `RecordingFaceReader` answers the same
and keeps every answer; saved, `ReplayFaceReader` gives those answers back with no tracker at all,
for machines without MediaPipe (the GPU machine `python -m bench gpu` runs on: numpy 2, no
MediaPipe wheel). An image is recognised by a 16x16 grey thumbnail (another JPEG decoder or a
resampling difference changes it by a grey level or two, another picture by far more); an image
that was not recorded finds no face, which avatar creation handles as it handles a real miss.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

THUMB = 16
SAME_IMAGE_GREY_LEVELS = 4.0   # mean absolute thumbnail difference below which two images are one


class FaceReader(Protocol):
    def find_faces(self, photo: np.ndarray) -> list[np.ndarray]:
        """Landmarks [478, 3] (pixels) of every face in the photo, largest first."""

    def params(self, images: np.ndarray) -> np.ndarray:
        """[N, H, W, 3] uint8 -> face parameters [N, P], NaN rows where no face is found."""

    def close(self) -> None: ...


class TrackerFaceReader:
    """MediaPipe: the face mesh for photos, the shape model's fit for parameters."""

    def __init__(self, max_faces: int = 4):
        self.max_faces = max_faces
        self._params = None

    def find_faces(self, photo: np.ndarray) -> list[np.ndarray]:
        from models.face.tracker import MediaPipeTracker
        with MediaPipeTracker(max_faces=self.max_faces, video=False, flip_average=False) as tracker:
            return [face.landmarks for face in tracker.detect_faces(photo)]

    def params(self, images: np.ndarray) -> np.ndarray:
        from models.face.params import ImageParams
        self._params = self._params or ImageParams()
        return self._params(images)[0]

    def close(self) -> None:
        if self._params is not None:
            self._params.close()
            self._params = None


def thumbnail(image: np.ndarray) -> np.ndarray:
    import cv2
    grey = cv2.cvtColor(np.ascontiguousarray(image, np.uint8), cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (THUMB, THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


class RecordingFaceReader:
    """Another reader's answers, passed on and kept: `save(path)` writes them for `ReplayFaceReader`."""

    def __init__(self, inner: FaceReader):
        self.inner = inner
        self.entries: list[tuple[np.ndarray, tuple[int, int], list[np.ndarray] | None, np.ndarray | None]] = []

    def find_faces(self, photo: np.ndarray) -> list[np.ndarray]:
        faces = self.inner.find_faces(photo)
        self.entries.append((thumbnail(photo), photo.shape[:2], faces, None))
        return faces

    def params(self, images: np.ndarray) -> np.ndarray:
        params = self.inner.params(images)
        self.entries += [(thumbnail(img), img.shape[:2], None, p) for img, p in zip(images, params)]
        return params

    def close(self) -> None:
        self.inner.close()

    def save(self, path: str | Path) -> Path:
        from models.atomic_files import save_npz_atomic
        n = len(self.entries)
        n_faces = np.array([len(e[2]) if e[2] is not None else -1 for e in self.entries])
        most = max(int(n_faces.max(initial=0)), 1)
        landmarks = np.full((n, most, 478, 3), np.nan, np.float32)
        params = np.full((n, 15), np.nan)
        for i, (_, _, faces, p) in enumerate(self.entries):
            for j, face in enumerate(faces or []):
                landmarks[i, j] = face
            if p is not None:
                params[i, : len(p)] = p
        return save_npz_atomic(path, thumbs=np.stack([e[0] for e in self.entries]),
                               shapes=np.array([e[1] for e in self.entries]), n_faces=n_faces,
                               landmarks=landmarks, params=params)


class ReplayFaceReader:
    """The answers a `RecordingFaceReader` saved, for the same images, with no tracker."""

    def __init__(self, path: str | Path):
        from live.avatar.avatar_file import AvatarError
        try:
            with np.load(path) as f:
                self.thumbs, self.shapes, self.n_faces = f["thumbs"], f["shapes"], f["n_faces"]
                self.landmarks, self._params = f["landmarks"], f["params"]
        except (OSError, KeyError, ValueError) as e:
            raise AvatarError(f"{path}: not a recording of face-tracker answers ({e}); make one with "
                              "`python -m bench gpu-carry`") from None

    def _match(self, image: np.ndarray, kind: str) -> int | None:
        """The recorded entry of this kind (photo: faces; image: parameters) for this picture, or None."""
        rows = np.flatnonzero((self.n_faces >= 0) if kind == "faces" else (self.n_faces < 0))
        rows = [i for i in rows if tuple(self.shapes[i]) == image.shape[:2]]
        if not rows:
            return None
        diffs = [np.abs(self.thumbs[i] - thumbnail(image)).mean() for i in rows]
        best = int(np.argmin(diffs))
        return rows[best] if diffs[best] < SAME_IMAGE_GREY_LEVELS else None

    def find_faces(self, photo: np.ndarray) -> list[np.ndarray]:
        i = self._match(photo, "faces")
        return [] if i is None else [self.landmarks[i, j].astype(np.float64) for j in range(self.n_faces[i])]

    def params(self, images: np.ndarray) -> np.ndarray:
        out = np.full((len(images), self._params.shape[1]), np.nan)
        for k, image in enumerate(images):
            i = self._match(image, "params")
            if i is not None:
                out[k] = self._params[i]
        return out

    def close(self) -> None:
        pass
