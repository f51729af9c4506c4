"""The training images: a folder written by `live gan dataset` (or any folder of face crops).

Images are read once into memory as uint8 (a minute of video at 256 px is ~100 MB), resized to
the training resolution with area filtering when they differ, and served as float tensors in
[-1, 1] with a random horizontal flip (faces are nearly symmetric; the flip doubles the data).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


class DatasetError(ValueError):
    """A training folder that cannot be used; the message says what to do."""


def list_images(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder; make one with `live gan dataset VIDEOS -o {folder}`")
    manifest = folder / "dataset.json"
    if manifest.is_file():
        try:
            names = [item["image"] for item in json.loads(manifest.read_text())["images"]]
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(f"{manifest}: unreadable manifest ({e}); remake the folder with `live gan dataset`") from None
        paths = [folder / n for n in names]
        missing = [p.name for p in paths if not p.is_file()]
        if missing:
            raise DatasetError(f"{folder}: {len(missing)} images of dataset.json are missing (e.g. {missing[0]})")
    else:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DatasetError(f"{folder}: no images; make them with `live gan dataset VIDEOS -o {folder}`")
    return paths


def read_crop(path: Path) -> np.ndarray:
    """One training image as RGB uint8, or a DatasetError that names the file."""
    from live.io.sources import SourceError, read_image_rgb
    try:
        return read_image_rgb(path)
    except SourceError:
        raise DatasetError(f"{path}: not a readable image; delete it or remake the folder") from None


class ImageFolder(torch.utils.data.Dataset):
    def __init__(self, folder: str | Path, resolution: int, xflip: bool = True):
        import cv2
        self.resolution, self.xflip = resolution, xflip
        images = []
        for path in list_images(folder):
            rgb = read_crop(path)
            h, w = rgb.shape[:2]
            if h != w:
                raise DatasetError(f"{path}: {w}x{h} is not square; training crops must be square "
                                   "(`live gan dataset` makes them)")
            if h < resolution // 2:
                raise DatasetError(f"{path}: {w}x{h} is far below the {resolution} px training resolution; "
                                   f"remake the folder with --size {resolution}")
            if h != resolution:
                interp = cv2.INTER_AREA if h > resolution else cv2.INTER_CUBIC
                rgb = cv2.resize(rgb, (resolution, resolution), interpolation=interp)
            images.append(rgb)
        self.images = np.ascontiguousarray(np.stack(images))  # [N, R, R, 3] uint8 RGB

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        img = self.images[i]
        if self.xflip and np.random.random() < 0.5:
            img = img[:, ::-1]
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float()
        return x / 127.5 - 1.0


def infinite_batches(dataset: ImageFolder, batch: int, sampler=None, workers: int = 0, seed: int = 0):
    """Batches forever (epochs reshuffled); batches smaller than `batch` are never yielded."""
    if len(dataset) < batch:
        raise DatasetError(f"{len(dataset)} images is fewer than one batch of {batch}; add video or lower --batch")
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=sampler is None, sampler=sampler,
                                         drop_last=True, num_workers=workers, pin_memory=torch.cuda.is_available(),
                                         generator=torch.Generator().manual_seed(seed))
    epoch = 0
    while True:
        if sampler is not None:
            sampler.set_epoch(epoch)
        yield from loader
        epoch += 1
