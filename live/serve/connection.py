"""One browser connection: its peer connection, and the same loop as `live run` fed by its camera.

    browser camera --WebRTC--> receive_frames --feed--> Pipeline (tracking, motion, render)
                                                             --TrackSink--> AvatarTrack --WebRTC--> browser

The loop runs on threads of its own (opening it loads the tracker: a second or two, off the event loop).
Statistics go to the page on its "stats" data channel twice a second and to `GET /api/stats`. The
connection ends when the browser leaves, the network drops, the browser goes silent (no frame for
SILENT_S, counted from the answer, so one that never connects is let go too), the loop stops, or the
server closes it; each path ends in `close()`, which runs once and tells the page why.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import json
import re
import threading
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from loguru import logger

from live.config import LiveConfig, RunConfig
from live.pipeline.slots import LatestSlot
from live.serve.avatar_track import AvatarTrack, TrackSink, receive_frames
from live.serve import LOCAL_ONLY
from live.serve.avatars import AvatarChoice
from models.errors import first_line

STATS_EVERY_S = 0.5
SILENT_S = 10.0         # a browser that sent nothing for this long (since the answer, or its last frame) is gone
PC_CLOSE_TIMEOUT_S = 5.0
FPS_WINDOW_S = 2.0      # the fps the page shows and paces its camera by: over the last two seconds
PATH_LIKE = re.compile(r"(?:[A-Za-z]:)?[/\\][^\s'\"]*[/\\]([^\s/\\'\"]+)")


def tolerate_a_busy_machine() -> None:
    """aioice ends a connection after 6 consent checks in a row (one every 5 s) get no answer within 0.5 s, with
    no retry. On a loaded machine (several streams on two cores, the browser on the same CPU) the event loop
    answers late for half a minute at a time and every stream dies mid-call. The browser's frames are the
    better sign of life: a connection whose browser sends nothing for SILENT_S is closed (Connection)."""
    import aioice.ice
    if hasattr(aioice.ice, "CONSENT_FAILURES"):
        aioice.ice.CONSENT_FAILURES = 10 ** 6


def for_the_browser(text: str) -> str:
    """A message with the server's folders taken out (file names kept): the page is not told the server's paths."""
    return PATH_LIKE.sub(r"\1", text)


PAGE_MESSAGE_MAX = 1024     # characters: the page's messages are tiny; a longer one is not read


def asks_recalibration(message) -> bool:
    """Whether a data-channel message from the page is {"recalibrate": true}. Anything else (bytes, other JSON, text
    too long or nested too deep to parse) is not, and raises nothing: a page cannot break its connection."""
    if not isinstance(message, str) or len(message) > PAGE_MESSAGE_MAX:
        return False
    try:
        asked = json.loads(message)
    except (ValueError, RecursionError):
        return False
    return isinstance(asked, dict) and asked.get("recalibrate") is True


class OfferRefused(ValueError):
    """An offer this server cannot answer (no camera video in it); the message says what to send."""


class Connection:
    def __init__(self, connection_id: str, cfg: LiveConfig, avatar: AvatarChoice, on_closed=None):
        tolerate_a_busy_machine()
        self.id, self.avatar, self.on_closed = connection_id, avatar, on_closed
        self.cfg = copy.deepcopy(cfg)
        defaults = RunConfig()
        for key in LOCAL_ONLY:
            setattr(self.cfg.run, key, copy.deepcopy(getattr(defaults, key)))
        self.cfg.run.avatar = avatar.path
        self.cfg.run.stats_every_s = 0.0        # per connection, the page and /api/stats carry the figures
        self.loop = asyncio.get_running_loop()
        # no ICE servers: host candidates only; a STUN lookup would wait for a network the server may lack
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.feed = LatestSlot("browser")
        self.track = AvatarTrack(self.loop)
        self.counters: dict = {}
        self.started = time.time()
        self.answered_at: float | None = None
        self.pipeline = None
        self.report = None
        self.error: str | None = None
        self.ended: str | None = None          # why it ended, once it has
        self.closed = False
        self._written = collections.deque()     # (perf_counter, frames written) over the last FPS_WINDOW_S
        self._tasks: list[asyncio.Task] = []
        self._channel = None
        self._thread = threading.Thread(target=self._run_loop, name=f"serve-{connection_id}", daemon=True)

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        """The answer to the browser's offer; the loop starts."""
        pc = self.pc

        @pc.on("track")
        def on_track(track):
            if track.kind == "video":
                self._tasks.append(asyncio.ensure_future(receive_frames(track, self.feed, self.counters)))

        @pc.on("datachannel")
        def on_channel(channel):
            self._channel = channel
            channel.on("open", self._tell_the_end)      # a loop that failed before the channel opened
            channel.on("message", self._from_the_page)

        @pc.on("connectionstatechange")
        async def on_state():
            logger.debug("connection {}: {}", self.id, pc.connectionState)
            if pc.connectionState in ("failed", "closed"):
                dropped = "failed" in (pc.connectionState, pc.iceConnectionState)
                await self.close("the connection dropped (the browser stopped answering)" if dropped
                                 else "the browser left")

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        if not any(t.kind == "video" for t in pc.getTransceivers()):
            raise OfferRefused("the offer carries no video: send the camera's video track (pc.addTrack)")
        # the avatar goes back on the transceiver the camera came in on (sendrecv), one m-line each way
        pc.addTrack(self.track)
        await pc.setLocalDescription(await pc.createAnswer())
        self.answered_at = time.perf_counter()
        self._thread.start()
        self._tasks.append(asyncio.ensure_future(self._watch()))
        return pc.localDescription

    def _run_loop(self) -> None:
        from live.pipeline.loop import Pipeline
        try:
            with Pipeline(self.cfg, feed=self.feed, sinks=[TrackSink(self.track)]) as pipeline:
                self.pipeline = pipeline
                self.report = pipeline.run()
        except Exception as e:          # shown on the page and in the log; the server serves on
            self.error = first_line(e, 300)
            logger.error("connection {}: the loop stopped: {}", self.id, self.error)
        finally:
            self.track.finish()
            try:
                asyncio.run_coroutine_threadsafe(self.close("the loop stopped"), self.loop)
            except RuntimeError:        # the event loop is already closed: the server is gone
                pass

    def _recent_fps(self, written: int) -> float:
        now = time.perf_counter()
        self._written.append((now, written))
        while len(self._written) > 2 and now - self._written[0][0] > FPS_WINDOW_S:
            self._written.popleft()
        (t0, w0), (t1, w1) = self._written[0], self._written[-1]
        return (w1 - w0) / (t1 - t0) if t1 > t0 else 0.0

    def stats(self) -> dict:
        """Figures so far: what came in, what the loop made of it, how long it took."""
        p = self.pipeline
        report = p.report if p is not None else None
        times = p.times if p is not None else None
        out = {"id": self.id, "avatar": self.avatar.id, "seconds": round(time.time() - self.started, 1),
               "state": "closed" if self.closed else self.pc.connectionState,
               "received": self.counters.get("received", 0), "sent": self.track.sent,
               "loop_fps": round(self._recent_fps(report.written), 1) if report else 0.0,
               "written": report.written if report else 0,
               "face_share": round(report.found_frames / report.written, 3) if report and report.written else 0.0,
               "dropped_in_feed": self.feed.dropped + self.counters.get("skipped", 0),
               "replaced_before_encoding": self.track.replaced}
        if times is not None:
            out.update({f"{name}_ms": round(times.recent_median(name, 60), 1)
                        for name in ("added", "track", "render")})
        stages = p.stages if p is not None and hasattr(p, "stages") else None
        out["adaptations"] = [a["step"] for a in stages.adaptations()] if stages is not None else []
        # the neutral pose: how many were taken (the first second's, then one per recalibration), and what is off in
        # the last (calibration/neutral.py askew_neutral; the page asks to take it again)
        motion = stages.motion if stages is not None else None
        relative = motion is not None and not p.controls.absolute
        out["neutrals_taken"] = motion.neutrals_taken if motion is not None else 0
        out["neutral_ready"] = relative and motion.neutral is not None    # (the page may ask for another)
        out["neutral_askew"] = list(motion.askew) if relative else []
        if self.error:
            out["error"] = for_the_browser(self.error)
        return out

    async def _watch(self) -> None:
        """The figures to the page; and a browser that sends nothing is let go (with ICE consent left to
        this, WebRTC itself would never notice a browser that vanished before its first frame)."""
        while not self.closed:
            await asyncio.sleep(STATS_EVERY_S)
            last = self.counters.get("last_at", self.answered_at)
            if time.perf_counter() - last > SILENT_S:
                await self.close(f"the browser sent no frame for {SILENT_S:.0f} s")
                return
            channel = self._channel
            if channel is not None and channel.readyState == "open":
                channel.send(json.dumps(self.stats()))

    def _from_the_page(self, message) -> None:
        """What the page asks of the loop: {"recalibrate": true} takes the neutral pose again (the preview window's
        c), unless one is being taken already. Anything else is logged and left."""
        pipeline = self.pipeline
        motion = getattr(getattr(pipeline, "stages", None), "motion", None)
        if not asks_recalibration(message) or motion is None:
            logger.debug("connection {}: a message from the page not understood: {!r}", self.id, str(message)[:80])
        elif motion.neutral is not None and not pipeline.controls.absolute:    # (a press again while taking: one)
            pipeline.controls.recalibrate = True

    def _tell_the_end(self) -> None:
        """The page learns why the server ended its stream (it then does not reconnect into the same end)."""
        channel = self._channel
        if self.ended is None or channel is None or channel.readyState != "open":
            return
        message = {"closed": self.ended}
        if self.error:
            message["error"] = for_the_browser(self.error)
        try:
            channel.send(json.dumps(message))
        except Exception as e:            # the transport is already going: the page learns from WebRTC
            logger.debug("connection {}: the end was not sent: {}", self.id, e)

    async def close(self, why: str = "closed by the server") -> None:
        if self.closed:
            return
        self.closed = True
        self.ended = why
        logger.info("connection {} ({}) ended: {}; {}", self.id, self.avatar.id, why, self.stats())
        try:
            self._tell_the_end()
            self.feed.close()               # the loop drains and stops; its thread ends by itself
            for task in self._tasks:
                if task is not asyncio.current_task():      # the watch task may be the one closing
                    task.cancel()
            try:      # aiortc's close can wait for ever on a transport that is already gone (shielded: it goes on)
                await asyncio.wait_for(asyncio.shield(self.pc.close()), PC_CLOSE_TIMEOUT_S)
            except asyncio.TimeoutError:
                logger.warning("connection {}: WebRTC did not close within {:.0f} s; left to end with the process",
                               self.id, PC_CLOSE_TIMEOUT_S)
        finally:
            if self.on_closed is not None:
                self.on_closed(self)

    def join(self, timeout: float) -> bool:
        """Wait (blocking) for the loop's thread; True when it ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()
