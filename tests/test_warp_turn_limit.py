"""A warp avatar's head turn past what its photo can show is eased (live/warp/turn_limit.py), not drawn torn."""

from __future__ import annotations

import numpy as np
import pytest

from live.warp.turn_limit import PITCH, YAW_AWAY, YAW_TO_HIDDEN, TurnLimit, soft_knee
from models.face.landmarks import PARAM_NAMES
from tests.conftest import SHARED, needs_shared


def test_the_knee_keeps_what_is_within_it_and_eases_the_rest_smoothly_below_the_most():
    knee, most = YAW_TO_HIDDEN
    assert all(soft_knee(v, knee, most) == v for v in (-knee, -7.5, 0.0, 3.0, knee))
    values = np.linspace(-80, 80, 3201)
    eased = np.array([soft_knee(v, knee, most) for v in values])
    assert np.all(np.diff(eased) > 0) and np.abs(eased).max() < most         # monotonic, never past the most
    slope = np.diff(eased) / np.diff(values)
    assert np.abs(np.diff(slope)).max() < 0.01                              # no corner at the knee: the turn eases
    assert soft_knee(-40.0, knee, most) == -soft_knee(40.0, knee, most)


def test_the_side_a_turned_photo_hides_gets_the_tight_limit_and_a_frontal_photo_both():
    """A photo turned to negative yaw hides its far side from positive changes, and the other way round."""
    assert TurnLimit(-30.0).yaw_limits(+25.0) == YAW_TO_HIDDEN and TurnLimit(-30.0).yaw_limits(-25.0) == YAW_AWAY
    assert TurnLimit(+30.0).yaw_limits(-25.0) == YAW_TO_HIDDEN and TurnLimit(+30.0).yaw_limits(+25.0) == YAW_AWAY
    assert TurnLimit(2.0).yaw_limits(+25.0) == YAW_TO_HIDDEN == TurnLimit(2.0).yaw_limits(-25.0)
    change = np.zeros(len(PARAM_NAMES))
    change[:4] = (40.0, -50.0, 10.0, 1.5)                                    # yaw, pitch, roll, jaw
    eased = TurnLimit(-30.0)(change)
    assert eased[0] == pytest.approx(soft_knee(40.0, *YAW_TO_HIDDEN)) and eased[1] == pytest.approx(soft_knee(-50.0, *PITCH))
    assert eased[2] == 10.0 and eased[3] == 1.5 and change[0] == 40.0       # roll within its knee; the input kept
    within = np.zeros(len(PARAM_NAMES))
    within[:3] = (20.0, -12.0, 5.0)
    assert TurnLimit(-30.0)(within) is within                                # within the tracker's range: as asked


@needs_shared
def test_a_turn_past_the_tracker_s_range_is_drawn_without_the_tearing_it_would_have():
    """Mona Lisa (photo turned 17 degrees) asked to turn 40 degrees toward her hidden side: without the limit the
    hair is cut along a seam and the contour's gradient energy rises to 1.23 of the still frame's (1.10 at 25
    degrees); eased to 26, it stays at 1.11. Within the range the frame is exactly the unlimited one."""
    from bench.warp_sweeps import contour_band_energy
    from live.warp.create_avatar import create_warp_avatar
    from live.warp.renderer import WarpRenderer
    from models.face.params import ParameterSpace
    from models.face.shape_model import FaceModel
    model = FaceModel.load()
    renderer = WarpRenderer(create_warp_avatar(SHARED / "media" / "portrait_mona_lisa.jpg"),
                            ParameterSpace(PARAM_NAMES, model.param_range), model)
    assert renderer.turn_limit.hidden_sign == 1.0
    size = float(np.ptp(renderer.src2d[renderer.oval], axis=0).max())
    zero = np.zeros(len(PARAM_NAMES))
    still = contour_band_energy(renderer(zero), renderer.mesh(zero)[renderer.oval, :2], max(0.06 * size, 2.0))

    def drawn(yaw: float) -> tuple[np.ndarray, float]:
        """The frame for this yaw change, and its contour's gradient energy against the still frame's."""
        change = zero.copy()
        change[0] = yaw
        frame = renderer(change * renderer.space.to_norm)
        return frame, contour_band_energy(frame, renderer.mesh(change)[renderer.oval, :2], max(0.06 * size, 2.0)) / still

    asked = 40.0
    limited_frame, _ = drawn(asked)
    limit = renderer.turn_limit
    renderer.turn_limit = lambda change: change                  # the warp as it was: every turn drawn as asked
    try:
        eased_frame, eased = drawn(soft_knee(asked, *YAW_TO_HIDDEN))
        _, torn = drawn(asked)
        inside, _ = drawn(20.0)
    finally:
        renderer.turn_limit = limit
    assert np.array_equal(limited_frame, eased_frame)            # the renderer draws the eased turn
    assert torn > eased + 0.06, (torn, eased)
    assert np.array_equal(inside, drawn(20.0)[0])                # within the range: the frame as it was
