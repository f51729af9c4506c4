"""Watching the avatar stay the avatar (`live run --watch-identity N`).

Every Nth output frame goes to this thread (a single-slot hand-off: if it is still busy, the frame
is skipped, never the live loop delayed), which embeds the face with the identity network and
compares it with the avatar's photo: CSIM, and dlib's same-person rule (distance < 0.6). A run of
frames that are not the avatar is logged as a warning; the run's report carries the figures.
"""

from __future__ import annotations

import threading

import numpy as np
from loguru import logger

from live.pipeline.slots import Closed, LatestSlot


class IdentityWatch(threading.Thread):
    WARN_AFTER = 2          # consecutive checks that are not the avatar before a warning

    def __init__(self, reference_rgb: np.ndarray, every: int):
        super().__init__(name="identity-watch", daemon=True)
        self.reference, self.every = reference_rgb, every
        self.inbox = LatestSlot("identity")
        self.checks = self.faces = self.not_avatar = self._streak = 0
        self.csims: list[float] = []
        self.error: BaseException | None = None

    def offer(self, frame_index: int, frame_rgb: np.ndarray) -> None:
        """From the sink loop: every `every`th frame is handed over (without waiting)."""
        if frame_index % self.every == 0 and not self.inbox.closed:
            self.inbox.put(frame_rgb)

    def run(self) -> None:
        try:
            from models.identity.embedding import (
                SAME_PERSON_DISTANCE,
                csim,
                default_identity,
                distance,
            )
            identity = default_identity()
            ref = identity.embed([self.reference])[0]
            if not np.isfinite(ref).all():
                logger.warning("identity watch off: no face found in the avatar's photo")
                return
            while True:
                e = identity.embed([self.inbox.get()])[0]
                self.checks += 1
                if not np.isfinite(e).all():
                    continue
                self.faces += 1
                self.csims = (self.csims + [float(csim(e, ref))])[-10_000:]
                if distance(e, ref) >= SAME_PERSON_DISTANCE:
                    self.not_avatar += 1
                    self._streak += 1
                    if self._streak == self.WARN_AFTER:
                        logger.warning("the output has stopped looking like the avatar (CSIM {:.2f} against its "
                                       "photo); lower run.strength, or drive fewer parameters (--drive)",
                                       self.csims[-1])
                else:
                    self._streak = 0
        except Closed:
            pass
        except BaseException as e:   # an optional check must not end the run
            self.error = e
            logger.warning("identity watch stopped: {}", e)

    def stop(self) -> None:
        self.inbox.abort()
        self.join(timeout=30)

    def summary(self) -> dict:
        return {"checks": self.checks, "faces": self.faces, "not_the_avatar": self.not_avatar,
                "csim_median": round(float(np.median(self.csims)), 3) if self.csims else None,
                "csim_min": round(float(np.min(self.csims)), 3) if self.csims else None}
