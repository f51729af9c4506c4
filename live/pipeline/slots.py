"""Hand-offs between pipeline stages.

A `LatestSlot` holds one item. Putting into a full slot replaces the item and counts it as
dropped: a slow stage always gets the newest frame and latency never builds up (a queue would
let it grow without bound). With `block=True` (offline runs, `--fast`) the producer waits for
the slot to empty instead, and nothing is dropped.

Every frame that does not reach the sinks is counted where it is lost: replaced in a slot
(`dropped`), left in a slot when the run stops (`dropped_at_close`, see abort), or in a stage's hands when
its output closed (`Stage.dropped_at_stop`). The run checks their sum against the frames read.
"""

from __future__ import annotations

import threading
from typing import Any


class Closed(Exception):
    """The slot was closed: the producer finished or the run is stopping."""


class LatestSlot:
    def __init__(self, name: str, block: bool = False):
        self.name, self.block = name, block
        self._item = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0              # replaced by a newer item before anyone took it
        self.dropped_at_close = 0     # still held when the run stopped (abort)

    def put(self, item) -> None:
        with self._cond:
            if self.block:
                while self._full and not self._closed:
                    self._cond.wait(0.1)
            if self._closed:
                raise Closed(self.name)
            if self._full:
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify_all()

    def get(self, timeout: float | None = None):
        """The newest item; blocks until there is one. Raises Closed once closed and empty."""
        with self._cond:
            while not self._full:
                if self._closed:
                    raise Closed(self.name)
                if not self._cond.wait(timeout if timeout is not None else 0.1) and timeout is not None:
                    raise TimeoutError(self.name)
            item, self._item, self._full = self._item, None, False
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """The producer is done: no more puts; the consumer still gets what is held, then Closed."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> None:
        """The run is stopping: close, and drop (and count) an item still held."""
        with self._cond:
            if self._full:
                self.dropped_at_close += 1
                self._item, self._full = None, False
            self._closed = True
            self._cond.notify_all()
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class Stage(threading.Thread):
    """A pipeline stage: takes from `inp`, hands `process(item)` to `out`, until `inp` closes.
    An exception stops the stage and is kept in `error` for the loop to report; either way the
    stage closes `out`, so the stages after it drain and stop too. An item processed after `out`
    closed is counted in `dropped_at_stop`."""

    def __init__(self, name: str, inp: LatestSlot, out: LatestSlot):
        super().__init__(name=name, daemon=True)
        self.inp, self.out = inp, out
        self.error: BaseException | None = None
        self.dropped_at_stop = 0

    def process(self, item: Any) -> Any:
        raise NotImplementedError

    def run(self) -> None:
        try:
            while True:
                result = self.process(self.inp.get())
                try:
                    self.out.put(result)
                except Closed:
                    self.dropped_at_stop += 1
                    raise
        except Closed:
            pass
        except BaseException as e:
            self.error = e
        finally:
            self.out.close()
