"""Saying when the source shows no face: the avatar then holds its pose, which looks like a frozen call."""

from __future__ import annotations

from loguru import logger

NO_FACE_WARN_S = 2.0        # source seconds without a face before the run says so


class FacelessStretch:
    """Says once when the source has shown no face for NO_FACE_WARN_S (the avatar holds its pose meanwhile, which
    looks like a frozen call), and when a face is back."""

    def __init__(self):
        self.since: float | None = None
        self.warned = False

    def see(self, found: bool, t: float) -> None:
        if found:
            if self.warned:
                logger.info("a face in the source again at {:.1f} s", t)
            self.since, self.warned = None, False
            return
        self.since = t if self.since is None else self.since
        if not self.warned and t - self.since >= NO_FACE_WARN_S:
            self.warned = True
            logger.warning("no face in the source for {:.0f} s (since {:.1f} s): the avatar holds its pose. Face the "
                           "camera, your face lit and whole in the picture (or check --source)", t - self.since,
                           self.since)
