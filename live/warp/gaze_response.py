"""The avatar's irises moved so that its glance reads as the driver's.

The driver's gaze is the tracker's reading of the iris it sees (models/face/gaze.py): the iris centre's offset
from the middle of the eye's corners, in eye widths. Drawn by that offset, the avatar's eyes looked a third to
half as far aside as the user's: the warp moves the iris whole, but the eye's opening hides the part that moves
under the lids and corners, and the tracker (and an image-only iris locator, bench/iris_locator.py: 0.8-1.2 of the
tracker's move on these renders, 0.95-1.14 of its spread on real footage) sees the visible iris's centre move
0.26-0.61 of the drawn move across the portraits (bench/RESULTS.md).

So each avatar has its own response, measured once at its creation: the irises drawn at DRAWN_ACROSS moves with the
face at rest, and the across move the tracker sees on each frame. The renderer then draws the move whose seen
move is the driver's (interpolated in that table; beyond it, the table's last move: an eye cannot look further
than its corner).

Up and down are drawn as read: there the iris is taller than the opening, so a drawn 0.12 eye widths reads as
0.01-0.03; a real eye looking down lowers its upper lid with it, which the warp does not do. Inverting that
response would magnify the tracker's noise five to ten times.
"""

from __future__ import annotations

import numpy as np

from live.warp.eyes import GAZE_LIMIT

DRAWN_ACROSS = np.linspace(-GAZE_LIMIT[0], GAZE_LIMIT[0], 9)   # eye widths, the iris centre's move on the avatar
MIN_SEEN_SPAN = 0.04            # seen across the whole table; below it the tracker did not see the irises move


class GazeResponse:
    """The driver's seen gaze -> the iris move to draw (across from the avatar's measured table; down as read)."""

    def __init__(self, seen_across: np.ndarray | None):
        self.seen_across = None
        if seen_across is not None:
            seen = np.asarray(seen_across, np.float64)
            if seen.shape == DRAWN_ACROSS.shape and np.isfinite(seen).all():
                # tracker noise: no step back, each side outward from the undrawn eyes' 0 (which stays 0: the
                # driver at neutral is drawn looking ahead, whatever a noisy side read)
                mid = len(seen) // 2
                right = np.maximum.accumulate(np.maximum(seen[mid:], 0.0))
                left = np.minimum.accumulate(np.minimum(seen[:mid + 1], 0.0)[::-1])[::-1]
                seen = np.concatenate([left[:-1], [0.0], right[1:]])
                if seen[-1] - seen[0] >= MIN_SEEN_SPAN:
                    self.seen_across = seen

    def __call__(self, gaze: np.ndarray | None) -> np.ndarray | None:
        if gaze is None or self.seen_across is None:
            return gaze
        out = np.array(gaze, np.float64)
        if np.isfinite(out[0]) and out[0] != 0.0:
            # each side on its own, so a side that read nothing (a run of zeros) never draws a glance the other way
            mid = len(DRAWN_ACROSS) // 2
            side = slice(mid, None) if out[0] > 0 else slice(None, mid + 1)
            out[0] = np.interp(out[0], self.seen_across[side], DRAWN_ACROSS[side])
        return out


def measure_seen_across(draw, track) -> np.ndarray | None:
    """The across move the tracker sees [len(DRAWN_ACROSS)] for each drawn one, relative to the undrawn eyes.

    draw(gaze) -> the avatar's frame at rest with its irises moved by gaze (eye widths, drawn as given);
    track(frame) -> the frame's [478, 2+] landmarks, or None where no face is found (then None: no table)."""
    from models.face.gaze import measure_gaze
    seen = []
    for move in DRAWN_ACROSS:
        landmarks = track(draw(np.array([move, 0.0])))
        if landmarks is None:
            return None
        seen.append(measure_gaze(landmarks)[0])
    seen = np.array(seen)
    return seen - seen[len(seen) // 2] if np.isfinite(seen).all() else None
