"""The run's sinks as one: every frame to each; a sink that fails is dropped with one line and the rest go on.

A virtual camera whose device disappears, a window closed under it, a disk that fills under a
file: each is that sink's fault, not the run's. The sink is closed (a close that raises is
reported, not raised), its failure is kept for the run's report, and frames go on to the others.
Only when no sink that delivers frames is left does the run stop, saying why.
"""

from __future__ import annotations

from loguru import logger

from live.io.sinks import Sink, SinkError
from models.errors import first_line


class SinkSet:
    def __init__(self, sinks: list[Sink]):
        self.active = list(sinks)
        self.failures: list[dict] = []       # {sink, after_frames, message}
        self.problems: list[str] = []        # closes that raised

    def __iter__(self):
        return iter(self.active)

    def write(self, frame, driver, t, written: int) -> None:
        """`frame` to every sink; SinkError when the last one that delivers frames anywhere has failed."""
        for sink in list(self.active):
            try:
                sink.write(frame, driver, t)
            except Exception as e:              # its fault, not the run's: drop it, keep the others
                self._drop(sink, e, written)
        if not any(s.delivers for s in self.active):
            failed = "; ".join(f"{f['sink']}: {f['message']}" for f in self.failures)
            raise SinkError(f"no sink is left to take the frames ({failed}); the run stops")

    def _drop(self, sink: Sink, error: BaseException, written: int) -> None:
        message = first_line(error, 300)
        if not isinstance(error, (SinkError, OSError)):      # not a device's or a disk's: a bug, kept for -v
            logger.opt(exception=error).debug("the {} sink raised", sink.name)
        self.active.remove(sink)
        self.failures.append({"sink": sink.name, "after_frames": written, "message": message})
        others = ", ".join(s.name for s in self.active if s.delivers)
        logger.error("the {} sink failed and is dropped: {}{}", sink.name, message,
                     f"; frames go on to {others}" if others else "")
        self._close(sink)

    def _close(self, sink: Sink) -> None:
        try:
            sink.close()
        except Exception as e:
            self.problems.append(f"closing the {sink.name} sink raised: {first_line(e, 200)}")
            logger.error("closing the {} sink raised: {}", sink.name, first_line(e, 200))

    def close(self) -> None:
        """Close every sink still open, each even when one before it raises; once."""
        sinks, self.active = self.active, []
        for sink in sinks:
            self._close(sink)
