"""Named points of the mediapipe face mesh (478 landmarks) and the expression measurements.

"Left" and "right" are the subject's: the subject's left eye is on the image's right.
Each expression coefficient is one geometric measurement on the pose-normalised shape,
standardised (0 at the model's mean shape, 1 = one standard deviation over the build footage);
the shape model's expression basis is the mesh motion that goes with a unit change of it
(models/face/shape_model_build.py).
"""

from __future__ import annotations

import numpy as np

NOSE_TIP, NOSE_BRIDGE, CHIN, FOREHEAD = 1, 168, 152, 10
LIP_UPPER_OUTER, LIP_UPPER_INNER, LIP_LOWER_INNER, LIP_LOWER_OUTER = 0, 13, 14, 17
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
EYE_RIGHT = dict(outer=33, inner=133, upper=159, lower=145)
EYE_LEFT = dict(outer=263, inner=362, upper=386, lower=374)
BROW_RIGHT_MID, BROW_LEFT_MID = 105, 334
BROW_RIGHT_INNER, BROW_LEFT_INNER = 55, 285

# Points on the face's plane of symmetry: they fix the model's left-right axis.
MIDLINE = (10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 2, 164, 0, 13, 14, 17, 18, 200, 199, 175, 152)

POSE_NAMES = ("yaw", "pitch", "roll")
# jaw is the opening of the mouth (inner-lip gap): it covers mouth open/close. The mesh's chin
# point follows jaw opening only loosely (correlation ~0.7 with the lip gap on the test clips).
EXPRESSION_NAMES = ("jaw", "smile_left", "smile_right", "pucker", "funnel", "lip_stretch",
                    "brow_raise", "brow_frown", "blink_left", "blink_right", "mouth_shift", "chin_raise")
PARAM_NAMES = POSE_NAMES + EXPRESSION_NAMES  # the paper's 15: yaw, pitch, roll, jaw, e1..e11

# How each coefficient behaves under a left-right mirror: itself (+1), its partner, or negated (-1).
MIRROR_PARTNER = {"smile_left": "smile_right", "smile_right": "smile_left",
                  "blink_left": "blink_right", "blink_right": "blink_left"}
MIRROR_SIGN = {"mouth_shift": -1.0}


def _d(s: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(s[..., a, :] - s[..., b, :], axis=-1)


def measure_expressions(shapes: np.ndarray) -> np.ndarray:
    """Raw expression measurements of pose-normalised shapes [..., 478, 3] (model frame: x to the
    image's right, y down, z away from the camera) -> [..., 12], in EXPRESSION_NAMES order."""
    s = shapes
    x, y, z = s[..., 0], s[..., 1], s[..., 2]

    def eye_closure(e):
        return -_d(s, e["upper"], e["lower"]) / _d(s, e["outer"], e["inner"])

    lip_mid_y = y[..., LIP_UPPER_OUTER]
    m = [
        _d(s, LIP_UPPER_INNER, LIP_LOWER_INNER),                            # jaw: inner-lip gap
        lip_mid_y - y[..., MOUTH_LEFT],                                     # smile_left: corner rises
        lip_mid_y - y[..., MOUTH_RIGHT],                                    # smile_right
        0.5 * (z[..., MOUTH_LEFT] + z[..., MOUTH_RIGHT])                    # pucker: lips pushed forward
        - 0.5 * (z[..., LIP_UPPER_OUTER] + z[..., LIP_LOWER_OUTER]),        #   of the mouth corners
        _d(s, LIP_UPPER_OUTER, LIP_UPPER_INNER) + _d(s, LIP_LOWER_INNER, LIP_LOWER_OUTER),  # funnel: lips turn out
        _d(s, MOUTH_LEFT, MOUTH_RIGHT),                                     # lip_stretch: mouth widens
        0.5 * (_d(s, BROW_LEFT_MID, EYE_LEFT["upper"]) + _d(s, BROW_RIGHT_MID, EYE_RIGHT["upper"])),  # brow_raise
        -_d(s, BROW_LEFT_INNER, BROW_RIGHT_INNER),                          # brow_frown: inner brows meet
        eye_closure(EYE_LEFT),                                              # blink_left
        eye_closure(EYE_RIGHT),                                             # blink_right
        0.5 * (x[..., LIP_UPPER_INNER] + x[..., LIP_LOWER_INNER]) - x[..., NOSE_TIP],  # mouth_shift: sideways
        -_d(s, LIP_LOWER_OUTER, CHIN),                                      # chin_raise: lower lip pushed up
    ]
    return np.stack(m, axis=-1)


def mirror_expression_matrix() -> np.ndarray:
    """[12, 12] matrix mapping expression coefficients to those of the mirrored face."""
    n = len(EXPRESSION_NAMES)
    m = np.zeros((n, n))
    for i, name in enumerate(EXPRESSION_NAMES):
        j = EXPRESSION_NAMES.index(MIRROR_PARTNER.get(name, name))
        m[j, i] = MIRROR_SIGN.get(name, 1.0)
    return m


def inner_lip_gap(landmarks: np.ndarray) -> float:
    """The lips' visible gap in the image: inner-lip distance over mouth width, from x and y only. Unlike the
    jaw coefficient (a 3D distance on the fitted shape, which closed lips leave at up to ~0.4 standard
    deviations above their rest as they press or the head turns), it is ~0 whenever the lips touch."""
    gap = np.linalg.norm(landmarks[LIP_UPPER_INNER, :2] - landmarks[LIP_LOWER_INNER, :2])
    return float(gap / max(np.linalg.norm(landmarks[MOUTH_LEFT, :2] - landmarks[MOUTH_RIGHT, :2]), 1e-6))
