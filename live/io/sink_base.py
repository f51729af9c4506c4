"""What every sink is: frames in (HxWx3 uint8 RGB), closed once; and the driver-beside-avatar view sinks share."""

from __future__ import annotations

from abc import ABC, abstractmethod
import numpy as np


class SinkError(RuntimeError):
    """A sink that cannot be opened or written; the message says what to do."""


class Sink(ABC):
    frames_written = 0
    name = "sink"
    delivers = True          # frames go somewhere (a device, a window, a file, or knowingly nowhere: null)

    @abstractmethod
    def write(self, frame_rgb: np.ndarray, driver: np.ndarray | None = None, t: float | None = None) -> None: ...

    def close(self) -> None:
        pass


def side_by_side(driver: np.ndarray | None, frame: np.ndarray) -> np.ndarray:
    """The driver (scaled to the avatar's height, or black when there is none) left of the avatar."""
    import cv2
    h = frame.shape[0]
    if driver is None:
        left = np.zeros_like(frame)
    else:
        scale = h / driver.shape[0]
        left = cv2.resize(driver, (max(1, round(driver.shape[1] * scale)) // 2 * 2, h), interpolation=cv2.INTER_AREA)
    return np.concatenate([left, frame], axis=1)
