"""The two ends of a connection's media: browser frames into the loop, the loop's frames back out.

- `receive_frames`: the browser's camera track (aiortc decodes it on its own thread) -> the loop's feed, a
  LatestSlot: when the loop is busy, an older frame is replaced, never queued, so latency cannot build up.
- `AvatarTrack` (an aiortc video track) + `TrackSink` (a pipeline sink): the sink runs on the loop's thread and
  leaves the newest frame for the track; the track, on the event loop, hands each new frame to the encoder
  once. A frame the encoder had no time for is replaced the same way.
"""

from __future__ import annotations

import asyncio
import fractions
import threading
import time

import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from live.io.sink_base import Sink
from live.pipeline.capture import DeliveredInterval
from live.pipeline.slots import Closed, LatestSlot

VIDEO_CLOCK = 90_000        # RTP's video clock rate: presentation times count in 1/90000 s


class AvatarTrack(MediaStreamTrack):
    """The avatar as a WebRTC video track: each frame the loop finished, newest first, stale ones skipped."""
    kind = "video"

    def __init__(self, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self.loop = loop
        self._lock = threading.Lock()
        self._frame: np.ndarray | None = None
        self._ended = False
        self._new = asyncio.Event()
        self._start = time.perf_counter()
        self._last_pts = -1
        self.sent = 0               # frames handed to the encoder
        self.replaced = 0           # frames the loop finished that a newer one replaced before the encoder took them

    def offer(self, frame_rgb: np.ndarray) -> None:
        """From the loop's thread: the newest frame (the previous one, if not yet sent, is dropped)."""
        with self._lock:
            self.replaced += self._frame is not None
            self._frame = frame_rgb
        self.loop.call_soon_threadsafe(self._new.set)

    def finish(self) -> None:
        """From any thread: no more frames (the loop stopped); recv ends the track."""
        self._ended = True
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._new.set)

    async def recv(self):
        import av
        while True:
            with self._lock:
                frame, self._frame = self._frame, None
            if frame is not None:
                break
            if self._ended or self.readyState != "live":
                raise MediaStreamError
            self._new.clear()
            await self._new.wait()
        out = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        # timestamps from the wall clock (strictly rising): the browser paces playback by them
        self._last_pts = max(int((time.perf_counter() - self._start) * VIDEO_CLOCK), self._last_pts + 1)
        out.pts, out.time_base = self._last_pts, fractions.Fraction(1, VIDEO_CLOCK)
        self.sent += 1
        return out


class TrackSink(Sink):
    """The pipeline's sink for a connection: frames go to its AvatarTrack."""
    name = "webrtc"

    def __init__(self, track: AvatarTrack):
        self.track = track

    def write(self, frame_rgb: np.ndarray, driver: np.ndarray | None = None, t: float | None = None) -> None:
        self.track.offer(frame_rgb)
        self.frames_written += 1

    def close(self) -> None:
        self.track.finish()


async def receive_frames(track, feed: LatestSlot, counters: dict) -> None:
    """The browser's camera frames into `feed` as (seconds since the first, RGB, arrival, the interval the browser
    delivers), until the track or the feed ends. `counters`: "received" counts them (the loop's own report counts
    what it took), "skipped" those passed over because a newer one was already decoded (a busy event loop),
    "last_at" is the perf_counter of the newest. The interval is measured here, over every frame received, skipped
    ones too: the loop's budgets take it (counted where the loop takes frames, a busy loop would see them further
    apart and loosen its budgets)."""
    start = None
    delivered = DeliveredInterval()
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        now = time.perf_counter()
        start = now if start is None else start
        counters["received"] = counters.get("received", 0) + 1
        counters["last_at"] = now
        interval = delivered(now - start)
        waiting = getattr(track, "_queue", None)      # aiortc's decoded frames not yet taken
        if waiting is not None and waiting.qsize() > 0:
            counters["skipped"] = counters.get("skipped", 0) + 1     # a newer one is already there
            continue
        image = frame.to_ndarray(format="rgb24")      # about a millisecond at 640x480: not worth a thread hop
        try:
            feed.put((now - start, image, now, interval))
        except Closed:
            return
