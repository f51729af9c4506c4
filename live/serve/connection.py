"""One browser connection: its peer connection, and the same loop as `live run` fed by its camera.

    browser camera --WebRTC--> receive_frames --feed--> Pipeline (tracking, motion, render)
                                                             --TrackSink--> AvatarTrack --WebRTC--> browser

The loop runs on threads of its own (opening it loads the tracker: a second or two, off the event loop).
Statistics go to the page on its "stats" data channel twice a second and to `GET /api/stats`. The
connection ends when the browser leaves, the network drops (ICE fails), the loop stops, or the server
closes it; each path ends in `close()`, which runs once.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from loguru import logger

from live.config import LiveConfig
from live.pipeline.slots import LatestSlot
from live.serve.avatar_track import AvatarTrack, TrackSink, receive_frames
from live.serve.avatars import AvatarChoice
from models.errors import first_line

STATS_EVERY_S = 0.5
SILENT_S = 10.0         # a browser that sent frames and then nothing for this long is gone (killed, asleep)


def tolerate_a_busy_machine() -> None:
    """aioice ends a connection after 6 consent checks in a row (one every 5 s) get no answer within 0.5 s, with
    no retry. On a loaded machine (several streams on two cores, the browser on the same CPU) the event loop
    answers late for half a minute at a time and every stream dies mid-call. The browser's frames are the
    better sign of life: a connection whose browser sends nothing for SILENT_S is closed (Connection)."""
    import aioice.ice
    if hasattr(aioice.ice, "CONSENT_FAILURES"):
        aioice.ice.CONSENT_FAILURES = 10 ** 6


class OfferRefused(ValueError):
    """An offer this server cannot answer (no camera video in it); the message says what to send."""


class Connection:
    def __init__(self, connection_id: str, cfg: LiveConfig, avatar: AvatarChoice, on_closed=None):
        tolerate_a_busy_machine()
        self.id, self.avatar, self.on_closed = connection_id, avatar, on_closed
        self.cfg = copy.deepcopy(cfg)
        self.cfg.run.avatar = avatar.path
        self.cfg.run.stats_every_s = 0.0        # per connection, the page and /api/stats carry the figures
        self.loop = asyncio.get_running_loop()
        # no ICE servers: host candidates only; a STUN lookup would wait for a network the server may lack
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.feed = LatestSlot("browser")
        self.track = AvatarTrack(self.loop)
        self.counters: dict = {}
        self.started = time.time()
        self.pipeline = None
        self.report = None
        self.error: str | None = None
        self.closed = False
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
        self._thread.start()
        self._tasks.append(asyncio.ensure_future(self._send_stats()))
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
            if not self.loop.is_closed():
                asyncio.run_coroutine_threadsafe(self.close("the loop stopped"), self.loop)

    def stats(self) -> dict:
        """Figures so far: what came in, what the loop made of it, how long it took."""
        p = self.pipeline
        report = p.report if p is not None else None
        times = p.times if p is not None else None
        out = {"id": self.id, "avatar": self.avatar.id, "seconds": round(time.time() - self.started, 1),
               "state": "closed" if self.closed else self.pc.connectionState,
               "received": self.counters.get("received", 0), "sent": self.track.sent,
               "loop_fps": round(report.fps, 1) if report else 0.0,
               "written": report.written if report else 0,
               "face_share": round(report.found_frames / report.written, 3) if report and report.written else 0.0,
               "dropped_in_feed": self.feed.dropped + self.counters.get("skipped", 0),
               "replaced_before_encoding": self.track.replaced}
        if times is not None:
            out.update({f"{name}_ms": round(times.recent_median(name, 60), 1)
                        for name in ("added", "track", "render")})
        budget = p.stages.motion.budget if p is not None and hasattr(p, "stages") else None
        out["adaptations"] = [a["step"] for a in budget.adaptations] if budget is not None else []
        if self.error:
            out["error"] = self.error
        return out

    async def _send_stats(self) -> None:
        """The figures to the page; and a browser that stopped sending is let go (WebRTC itself notices only
        after about 30 s, all that time holding one of the server's connections)."""
        while not self.closed:
            await asyncio.sleep(STATS_EVERY_S)
            last = self.counters.get("last_at")
            if last is not None and time.perf_counter() - last > SILENT_S:
                await self.close(f"the browser sent no frame for {SILENT_S:.0f} s")
                return
            channel = self._channel
            if channel is not None and channel.readyState == "open":
                channel.send(json.dumps(self.stats()))

    async def close(self, why: str = "closed by the server") -> None:
        if self.closed:
            return
        self.closed = True
        logger.info("connection {} ({}) ended: {}; {}", self.id, self.avatar.id, why, self.stats())
        if self.error and self._channel is not None and self._channel.readyState == "open":
            self._channel.send(json.dumps({"error": self.error}))
        self.feed.close()               # the loop drains and stops; its thread ends by itself
        for task in self._tasks:
            if task is not asyncio.current_task():      # the stats task may be the one closing
                task.cancel()
        await self.pc.close()
        if self.on_closed is not None:
            self.on_closed(self)

    def join(self, timeout: float) -> bool:
        """Wait (blocking) for the loop's thread; True when it ended."""
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()
