"""Face-parameter tracks as files: the CSV `live track` writes, read back to drive an avatar.

A recorded track replays a driver exactly, with no camera and no tracker (`live run --source
driver.csv`): the same motion on every run and every machine, which is what a benchmark or a
machine without the tracker's native libraries needs (`python -m bench gpu` drives its live
loop this way on the GPU machine). Columns: frame, time (s), found (0/1), confidence, then one
column per face parameter in the units `live track` writes (degrees, standard deviations).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.face.landmarks import PARAM_NAMES

CSV_COLUMNS = ("frame", "time", "found", "confidence") + PARAM_NAMES


class TrackFileError(ValueError):
    """A file that is not a track `live track` wrote, or one that is damaged; the message says which."""


@dataclass
class Track:
    times: np.ndarray      # [T] seconds from the first frame
    found: np.ndarray      # [T] bool: a face was tracked
    params: np.ndarray     # [T, P] parameters; NaN rows where no face was found

    @property
    def fps(self) -> float:
        """The recording's frame rate (median frame interval); 25 for a track too short to tell."""
        steps = np.diff(self.times)
        steps = steps[steps > 0]
        return float(1.0 / np.median(steps)) if len(steps) else 25.0

    def __len__(self) -> int:
        return len(self.times)


def is_track_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".csv"


def read_track(path: str | Path) -> Track:
    path = Path(path)
    fix = "record one with `live track VIDEO --out driver.csv`"
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise TrackFileError(f"{path}: cannot read it as a face-parameter track ({e}); {fix}") from None
    if not rows or tuple(rows[0]) != CSV_COLUMNS:
        found = ", ".join(rows[0][:6]) if rows else "an empty file"
        raise TrackFileError(f"{path}: not a track of live's face parameters (expected the columns {', '.join(CSV_COLUMNS[:6])}"
                             f", ...; found {found}); {fix}")
    times, found, params = [], [], []
    for line, row in enumerate(rows[1:], start=2):
        try:
            if len(row) != len(CSV_COLUMNS):
                raise ValueError(f"{len(row)} columns, not {len(CSV_COLUMNS)}")
            times.append(float(row[1]))
            found.append(row[2] == "1")
            params.append([float(v) if found[-1] else np.nan for v in row[4:]])
        except ValueError as e:
            raise TrackFileError(f"{path}, line {line}: {e}; the file is damaged, {fix}") from None
    if not times:
        raise TrackFileError(f"{path}: the track holds no frames; {fix}")
    t = np.asarray(times)
    if not np.isfinite(t).all() or (np.diff(t) < 0).any():
        raise TrackFileError(f"{path}: its times are not increasing; the file is damaged, {fix}")
    p = np.asarray(params, dtype=np.float64)
    ok = np.asarray(found)
    if not np.isfinite(p[ok]).all():
        raise TrackFileError(f"{path}: a frame marked as found holds NaN or infinite parameters; {fix}")
    return Track(t - t[0], ok, p)
