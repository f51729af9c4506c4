"""A WebRTC client in Python (aiortc) for the `live serve` tests that need no browser: it sends a clip as its
camera, takes the avatar stream back, and can leave abruptly."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.request

import functools

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack


@functools.cache
def clip_frames(path: str, size: int = 256) -> tuple[np.ndarray, ...]:
    """The clip's frames, square and small, decoded once per test session."""
    from live.io.sources import iter_video_rgb
    return tuple(frame for _, _, frame in iter_video_rgb(path, size=(size, size)))


class ClipCamera(VideoStreamTrack):
    """A camera that plays a clip at 30 fps, from the top again at its end, for as long as it is asked
    (aiortc's MediaPlayer stops at the end of an mp4 even when told to loop)."""

    def __init__(self, path: str):
        super().__init__()
        self.frames = clip_frames(path)
        self.k = 0

    async def recv(self):
        import av
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self.frames[self.k % len(self.frames)], format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.k += 1
        return frame


def http(url: str, data: bytes | None = None, content_type: str = "application/json",
         context: ssl.SSLContext | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET, or of a POST when data is given; errors are answers too."""
    req = urllib.request.Request(url, data, {"Content-Type": content_type} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=60, context=context) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        body = e.read()
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, {"error": body.decode(errors="replace")}


class Client:
    """One connection: `await start()`, then frames arrive in `frames` (arrival time, shape); `stats` holds the
    server's data-channel messages."""

    def __init__(self, base_url: str, clip: str, avatar: str | None = None):
        self.base_url, self.clip, self.avatar = base_url, clip, avatar
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames: list[tuple[float, tuple]] = []
        self.stats: list[dict] = []
        self.answer: tuple[int, dict] | None = None
        self._pull = None

    async def start(self) -> tuple[int, dict]:
        self.camera = ClipCamera(self.clip)
        self.pc.addTrack(self.camera)
        channel = self.channel = self.pc.createDataChannel("stats")      # (the page's messages go back on it)
        channel.on("message", lambda m: self.stats.append(json.loads(m)))

        @self.pc.on("track")
        def on_track(track):
            async def pull():
                while True:
                    frame = await track.recv()
                    self.frames.append((time.perf_counter(), frame.to_ndarray(format="rgb24").shape))
            self._pull = asyncio.ensure_future(pull())

        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = json.dumps({"sdp": self.pc.localDescription.sdp, "type": "offer", "avatar": self.avatar}).encode()
        status, answer = await asyncio.to_thread(http, self.base_url + "api/offer", body)
        self.answer = (status, answer)
        if status == 200:
            await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return status, answer

    async def wait_frames(self, n: int, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while len(self.frames) < n:
            if time.perf_counter() > deadline:
                raise AssertionError(f"{len(self.frames)} of {n} avatar frames within {timeout:.0f} s")
            await asyncio.sleep(0.1)

    async def wait_written(self, n: int, timeout: float) -> None:
        """Until the server's figures say its loop wrote n frames (or timeout s passed: the test's asserts say)."""
        deadline = time.perf_counter() + timeout
        while (not self.stats or self.stats[-1].get("written", 0) < n) and time.perf_counter() < deadline:
            await asyncio.sleep(0.2)

    async def wait_stats(self, wanted, timeout: float) -> dict:
        """The first of the server's figures for which wanted(figures) is true, waiting up to timeout s."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            for figures in self.stats:
                if wanted(figures):
                    return figures
            await asyncio.sleep(0.2)
        raise AssertionError(f"no figures as wanted within {timeout:.0f} s; the last: {self.stats[-1:]}")

    async def close(self) -> None:
        if self._pull is not None:
            self._pull.cancel()
        self.camera.stop()
        await self.pc.close()


async def stream(base_url: str, clip: str, frames: int, written: int = 0, avatar: str | None = None,
                 frames_s: float = 90.0, written_s: float = 60.0) -> Client:
    """One whole stream: started (its offer answered 200), `frames` avatar frames received within frames_s, the
    server's loop at `written` frames (0: not waited for), closed. The closed Client keeps frames and stats."""
    c = Client(base_url, clip, avatar)
    status, answer = await c.start()
    assert status == 200, answer
    await c.wait_frames(frames, frames_s)
    if written:
        await c.wait_written(written, written_s)
    await c.close()
    return c
