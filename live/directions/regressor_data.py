"""What the face-parameter regressor learns from: faces with the tracker's answers.

Two sources, both cut in the generator's framing and tracked by the live loop's own tracker (MediaPipe
with flip averaging, the 3D shape-model fit): the generator's faces (random codes, a range of
truncations, some moved along random W+ directions so that shifted renders, which direction training
feeds the regressor, are among them), and real talking-head frames cropped as the generator's training
data was (each frame's crop tracked again, so the answers are in crop pixels). A face the tracker does
not find is left out. The set is cached per generator, face model and options (an .npz of crops at the
regressor's input size), so a second run starts training at once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from live.directions.sampling import codes_for_seeds, synthesize_batched
from models.face.shape_model import FaceModel
from models.identity.face_chip import five_points_from_mesh
from models.images import images_to_uint8


@dataclass
class FaceSet:
    images: np.ndarray      # [N, S, S, 3] uint8 crops at the regressor's input size
    params: np.ndarray      # [N, P] the tracker's parameters (raw units)
    points: np.ndarray      # [N, 5, 2] dlib's 5 points, in [0, 1] of the crop
    source: np.ndarray      # [N] 0: generated, 1 + k: real clip k

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, keep: np.ndarray) -> "FaceSet":
        return FaceSet(self.images[keep], self.params[keep], self.points[keep], self.source[keep])

    @staticmethod
    def concat(sets: list["FaceSet"]) -> "FaceSet":
        return FaceSet(*(np.concatenate([getattr(s, k) for s in sets]) for k in ("images", "params", "points", "source")))


class CropTracker:
    """Images (each on its own, no video state) -> parameters, 5 points (pixels), found."""

    def __init__(self, model: FaceModel):
        from models.face.tracker import MediaPipeTracker
        self.model = model
        self.tracker = MediaPipeTracker(max_faces=1, video=False, mirror_index=model.mirror)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        obs = self.tracker.track(np.ascontiguousarray(image))
        if not obs.found:
            return None
        return self.model.fit(obs.landmarks).params, five_points_from_mesh(obs.landmarks), obs.landmarks

    def close(self) -> None:
        self.tracker.close()


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2
    if image.shape[0] == size:
        return image
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if image.shape[0] > size else cv2.INTER_LINEAR)


def generated_faces(G, tracker: CropTracker, n: int, size: int, seed: int = 0, shift: float = 0.6,
                    batch: int = 16, progress=None) -> FaceSet:
    """n renders of the generator: truncation drawn from [0.5, 1], and every other code moved by a random
    W+ shift on the first 8 layers (its length `shift` times the typical spread of W), tracked."""
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, 2**31 - 1, n)
    psi = torch.from_numpy(rng.uniform(0.5, 1.0, n)).float()
    out = {"images": [], "params": [], "points": []}
    spread = _w_spread(G)
    for start in range(0, n, batch):
        idx = slice(start, min(start + batch, n))
        w = codes_for_seeds(G, seeds[idx], 1.0)
        w = G.w_avg + psi[idx, None].to(w) * (w - G.w_avg)
        w_plus = G.broadcast(w).clone()
        layers = min(8, G.n_latent)
        moved = torch.from_numpy(rng.random(len(w)) < 0.5)
        noise = torch.from_numpy(rng.standard_normal((len(w), layers, G.style_dim))).float().to(w)
        w_plus[moved, :layers] += shift * spread * noise[moved]
        for image in images_to_uint8(synthesize_batched(G, w_plus)):
            _add(out, tracker(image), image, size)
            if progress:
                progress()
    return _faceset(out, source=0)


def _w_spread(G, n: int = 2000) -> torch.Tensor:
    with torch.no_grad():
        w = G.mapping(torch.randn(n, G.style_dim, generator=torch.Generator().manual_seed(1)).to(G.w_avg.device))
    return w.std(0)


def clip_faces(path: Path, tracker: CropTracker, framing: str, resolution: int, size: int, source: int,
               every: int = 2, max_frames: int = 400, progress=None) -> FaceSet:
    """Frames of a clip cut in the generator's framing at its resolution, each crop tracked again."""
    from live.io.sources import iter_video_rgb
    from models.framing import crop_transform
    out = {"images": [], "params": [], "points": []}
    for k, _, frame in iter_video_rgb(path, max_frames=max_frames * every):
        if k % every:
            continue
        found = tracker(frame)
        if found is not None:
            crop = crop_transform(found[2], framing, resolution).apply(frame)
            _add(out, tracker(crop), crop, size)
        if progress:
            progress()
    return _faceset(out, source=source)


def _add(out: dict, found, image: np.ndarray, size: int) -> None:
    if found is None:
        return
    params, points, _ = found
    out["images"].append(_resize(image, size))
    out["params"].append(params)
    out["points"].append(points / np.array([image.shape[1], image.shape[0]], np.float64))


def _faceset(out: dict, source: int) -> FaceSet:
    n = len(out["images"])
    if not n:
        return FaceSet(np.zeros((0, 1, 1, 3), np.uint8), np.zeros((0, 15)), np.zeros((0, 5, 2)), np.zeros(0, int))
    return FaceSet(np.stack(out["images"]), np.stack(out["params"]), np.stack(out["points"]), np.full(n, source))


def collect_faces(G, framing: str, clips: list[Path], n_generated: int, size: int, cache_dir: Path,
                  weights_sha256: str, face_model_sha256: str) -> tuple[FaceSet, list[str]]:
    """The whole set (cached): generated faces first, then each clip's; and the clips' names."""
    from rich.progress import Progress
    key = hashlib.sha256(f"{weights_sha256}|{face_model_sha256}|{framing}|{n_generated}|{size}|"
                         f"{[c.name for c in clips]}".encode()).hexdigest()[:16]
    cache = cache_dir / f"regressor-faces-{key}.npz"
    names = [c.name for c in clips]
    if cache.is_file():
        with np.load(cache) as f:
            logger.info("regressor data from the cache ({})", cache)
            return FaceSet(f["images"], f["params"], f["points"], f["source"]), names
    start = time.perf_counter()
    model = FaceModel.load()
    tracker = CropTracker(model)
    try:
        with Progress(transient=True) as bar:
            total = n_generated + 200 * len(clips)
            task = bar.add_task("rendering and tracking faces", total=total)
            done, last_log = [0], [time.perf_counter()]

            def advance() -> None:
                bar.advance(task)
                done[0] += 1
                if time.perf_counter() - last_log[0] >= 60:     # a log file shows no bar
                    last_log[0] = time.perf_counter()
                    logger.info("regressor data: {} of about {} faces rendered or read, and tracked", done[0], total)
            sets = [generated_faces(G, tracker, n_generated, size, progress=advance)]
            for k, clip in enumerate(clips):
                sets.append(clip_faces(clip, tracker, framing, G.resolution, size, source=1 + k, progress=advance))
    finally:
        tracker.close()
    faces = FaceSet.concat(sets)
    from models.atomic_files import save_npz_atomic
    save_npz_atomic(cache, images=faces.images, params=faces.params, points=faces.points, source=faces.source)
    logger.info("{} faces with the tracker's answers ({} generated, {} from {} clips) in {:.0f} s", len(faces),
                int((faces.source == 0).sum()), int((faces.source > 0).sum()), len(clips), time.perf_counter() - start)
    return faces, names
