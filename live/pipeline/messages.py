"""What flows between the stages: one message type per hand-off, each carrying its frame's
timestamps (perf_counter seconds) from capture onward, so per-stage and end-to-end latency can
be measured on every frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Captured:
    index: int                 # source frame number
    t_source: float            # the frame's time in the source (s); for a camera, since start
    image: np.ndarray | None   # HxWx3 uint8 RGB; None for the synthetic driver and a recorded track
    stamps: dict = field(default_factory=dict)   # stage name -> perf_counter when it finished
    params: np.ndarray | None = None   # [P] recorded parameters (a track file): used instead of tracking; NaN: no face
    # the source's frame interval as delivered (s), over every frame it gave, dropped ones too (a stage downstream
    # sees fewer frames when it falls behind: their spacing would loosen its own budget); None until known
    interval: float | None = None


@dataclass
class Motion:
    index: int
    t_source: float
    found: bool                # a face was tracked in this frame
    params: np.ndarray         # [15] smoothed parameters (NaN when not found)
    delta_norm: np.ndarray     # [15] normalised delta_p actually applied (after loss handling)
    driver: np.ndarray | None  # the frame, for side-by-side outputs
    stamps: dict = field(default_factory=dict)
    gaze: np.ndarray | None = None   # [2] the driver's iris offset from its neutral, eye widths; None: the photo's
    mouth: object | None = None      # the driver's mouth (live/warp/driver_mouth.MouthPatch) for --mouth driver
    interval: float | None = None    # the source's frame interval as delivered (Captured.interval)


@dataclass
class Rendered:
    index: int
    t_source: float
    frame: np.ndarray          # HxWx3 uint8 RGB, the avatar at the output size
    driver: np.ndarray | None
    found: bool
    stamps: dict = field(default_factory=dict)
    delta_norm: np.ndarray | None = None   # [P] the change this frame was rendered with (checks re-render it)
