"""How far a warp avatar's head is drawn turning: the driver's change, eased in before the warp tears.

The warp can only stretch the photo's own pixels. Turning the head toward the side the photo hides (the far cheek of
a photo taken turned, which lies nearly edge-on) stretches a few pixels across the whole cheek: streaks, the hair cut
along a seam, the far eye's lashes smeared. On the four portraits (bench/RESULTS.md, "A turn past what the photo
shows, eased") that begins past about 20 degrees of yaw change toward the hidden side and is plain at 25-35, while
turning further away stays clean past 35 degrees and nods stay clean to 30. The tracker reads up to about +-21 degrees
of yaw on the build footage, but a user looking at another screen turns further, and a neutral taken while turned
(calibration/neutral.py askew_neutral) adds its own turn to every change: lp_d3's largest turn asked for 35. In
absolute mode (`--absolute`) the change is the driver's pose less the photo's, so a driver facing the camera asks a
photo turned 34 degrees (Vermeer's) for 34 and gets 26: the photo cannot show its far side frontal.

So each angle's change, either way, passes a soft knee: as asked up to the knee, then eased toward a most it never
passes (a tanh: smooth, with the slope 1 at the knee so a turn does not visibly stop). Yaw toward the photo's hidden
side has the tight pair, its knee at the tracker's range (the face model's yaw range is -22.7 to +20.5 degrees):
within it the head follows the driver as asked (#25 asks for a clean frame there, and the cross pose error counts
every degree not drawn), beyond it the avatar stops near 26. Yaw away from that side, pitch and roll have wide
pairs (past profile a face folds). A frontal photo (within FRONTAL_DEG) hides neither side, so both ways of its yaw
take the tight pair.
"""

from __future__ import annotations

import numpy as np

FRONTAL_DEG = 5.0
# (knee, most) in degrees of change, per angle and way
YAW_TO_HIDDEN = (21.0, 26.0)        # toward the side the photo hides: as asked within the tracker's range
YAW_AWAY = (30.0, 40.0)             # further away (a face past profile folds)
PITCH = (25.0, 35.0)
ROLL = (30.0, 45.0)


def soft_knee(value: float, knee: float, most: float) -> float:
    """`value` as it is within +-knee, eased toward +-most beyond (continuous, and so is its slope)."""
    size = abs(value)
    if size <= knee:
        return value
    return float(np.sign(value) * (knee + (most - knee) * np.tanh((size - knee) / (most - knee))))


class TurnLimit:
    """For one photo: a raw parameter change -> the same with its head pose eased (yaw, pitch, roll come first)."""

    def __init__(self, photo_yaw: float):
        # the photo turned one way hides its far side: a change of the opposite sign turns that side into view
        self.hidden_sign = 0.0 if abs(photo_yaw) < FRONTAL_DEG else -float(np.sign(photo_yaw))

    def yaw_limits(self, change: float) -> tuple[float, float]:
        toward_hidden = self.hidden_sign == 0.0 or np.sign(change) == self.hidden_sign
        return YAW_TO_HIDDEN if toward_hidden else YAW_AWAY

    def __call__(self, delta_raw: np.ndarray) -> np.ndarray:
        yaw, pitch, roll = (float(v) for v in delta_raw[:3])
        eased = (soft_knee(yaw, *self.yaw_limits(yaw)), soft_knee(pitch, *PITCH), soft_knee(roll, *ROLL))
        if eased == (yaw, pitch, roll):
            return delta_raw
        out = np.array(delta_raw, np.float64)
        out[:3] = eased
        return out
