"""A loop that cannot keep up makes tracking cheaper, one reported step at a time (live/pipeline/tracking_budget.py).
The steps are driven by fed tracking times (no bound on this machine's speed)."""

from __future__ import annotations

import numpy as np
import pytest

from live.pipeline.tracking_budget import STEPS, WINDOW, TrackingBudget, predict


def test_steps_are_taken_in_order_once_per_window_and_reported():
    budget = TrackingBudget(1 / 30)                       # 33 ms a frame: 18 ms for tracking
    taken = [budget.observe(0.010, k) for k in range(3 * WINDOW)]
    assert not any(taken) and budget.level == 0           # within its budget: nothing changes
    taken = [budget.observe(0.040, k) for k in range(4 * WINDOW)]
    assert [t for t in taken if t] == list(STEPS)         # flip averaging off, then alternate frames
    assert taken.index(STEPS[1]) - taken.index(STEPS[0]) >= WINDOW
    assert budget.alternate
    assert [a["step"] for a in budget.adaptations] == list(STEPS)
    first = budget.adaptations[0]
    assert first["stage"] == "tracking" and first["budget_ms"] == 18.3 and first["ms"] > first["budget_ms"]


def test_a_tracker_without_flip_averaging_goes_straight_to_alternate_frames():
    budget = TrackingBudget(1 / 30, can_stop_flip=False)
    taken = [budget.observe(0.040, k) for k in range(2 * WINDOW)]
    assert [t for t in taken if t] == [STEPS[1]]


def test_predicted_parameters_continue_the_motion():
    a, b = (0.0, np.array([0.0, 1.0])), (0.1, np.array([1.0, 1.0]))
    assert np.allclose(predict(b, a, 0.15), [1.5, 1.0])     # half a step on
    assert np.allclose(predict(b, a, 0.5), [2.0, 1.0])      # never more than one step ahead
    assert np.allclose(predict(b, None, 0.15), [1.0, 1.0])  # one sample: held


def test_the_motion_stage_tracks_alternate_frames_once_told_to():
    from live.pipeline.messages import Captured
    from live.pipeline.motion import Controls, MotionStage
    from live.pipeline.slots import LatestSlot
    from models.face.landmarks import PARAM_NAMES
    from models.face.params import FaceParams, ParameterSpace
    from models.face.shape_model import FaceModel
    from models.face.smoothing import ParamSmoother

    class CountingEstimator:
        calls = 0

        def __call__(self, image, index, t):
            self.calls += 1
            p = np.zeros(len(PARAM_NAMES))
            p[0] = 10.0 * t                                   # yaw turning at 10 degrees a second
            return FaceParams(index, t, True, p)

    model = FaceModel.load()
    space = ParameterSpace(PARAM_NAMES, model.param_range)
    budget = TrackingBudget(1 / 30)
    budget.level = 2                                          # as after both steps
    estimator = CountingEstimator()
    smoother = ParamSmoother({n: 1.0 for n in PARAM_NAMES}, {n: 0.0 for n in PARAM_NAMES}, enabled=False)
    stage = MotionStage(LatestSlot("a"), LatestSlot("b"), estimator, smoother, space, np.zeros(15),
                        Controls(absolute=True), None, 0.5, 0.5, budget=budget)
    frame = np.zeros((8, 8, 3), np.uint8)
    yaws = [stage.process(Captured(k, k / 30, frame)).params[0] for k in range(20)]
    assert estimator.calls == 10                              # every other frame
    assert np.allclose(yaws[2:], 10.0 * np.arange(2, 20) / 30)   # the frames between predicted on the motion


def test_the_budget_follows_the_frame_rate_the_source_delivers():
    budget = TrackingBudget(1 / 30)                       # asked for 30 fps: 18 ms for tracking
    taken = [budget.observe(0.025, k, frame_interval_s=1 / 15) for k in range(3 * WINDOW)]
    assert not any(taken) and budget.budget_s == pytest.approx(0.55 / 15)   # delivered 15 fps: 37 ms, enough


def test_stopping_flip_averaging_keeps_the_neutral_pose_taken_at_the_start():
    """The step happens mid-call, whatever the face is doing: with the head turned then, taking the neutral pose
    again left the avatar facing ahead while the user was turned (and held still for a second)."""
    from live.pipeline.messages import Captured
    from live.pipeline.motion import Controls, MotionStage
    from live.pipeline.slots import LatestSlot
    from models.face.landmarks import PARAM_NAMES
    from models.face.params import FaceParams, ParameterSpace
    from models.face.shape_model import FaceModel
    from models.face.smoothing import ParamSmoother

    class Tracker:
        stopped_at = None

        def stop_flip_average(self):
            self.stopped_at = now["t"]

    class Estimator:
        tracker = Tracker()

        def __call__(self, image, index, t):
            p = np.zeros(len(PARAM_NAMES))
            p[0] = 0.0 if t < 1.2 else 15.0                   # still for the neutral pose, then turned and held
            return FaceParams(index, t, True, p)

    class BudgetSpentAt2s:                                    # the loop falls behind two seconds in
        alternate = False

        def observe(self, tracking_s, index, frame_interval_s=None):
            return STEPS[0] if index == 60 else None

    model = FaceModel.load()
    space = ParameterSpace(PARAM_NAMES, model.param_range)
    estimator = Estimator()
    smoother = ParamSmoother({n: 1.0 for n in PARAM_NAMES}, {n: 0.0 for n in PARAM_NAMES}, enabled=False)
    stage = MotionStage(LatestSlot("a"), LatestSlot("b"), estimator, smoother, space, np.zeros(15), Controls(),
                        None, 0.5, 0.5, budget=BudgetSpentAt2s())
    frame = np.zeros((8, 8, 3), np.uint8)
    now = {"t": 0.0}
    yaws = []
    for k in range(150):
        now["t"] = k / 30
        yaws.append(stage.process(Captured(k, k / 30, frame)).delta_norm[0] / space.to_norm[0])
    assert estimator.tracker.stopped_at == 2.0                   # the step came with the head turned
    assert np.allclose(yaws[:30], 0.0) and np.allclose(yaws[36:], 15.0, atol=1e-3)   # and the avatar stays turned
