"""A WebRTC client in Python (aiortc) for the `live serve` tests that need no browser: it sends a clip as its
camera, takes the avatar stream back, and can leave abruptly."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
import urllib.error
import urllib.request

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer


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
        self.player = MediaPlayer(self.clip, loop=True)
        self.pc.addTrack(self.player.video)
        channel = self.pc.createDataChannel("stats")
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

    async def close(self) -> None:
        if self._pull is not None:
            self._pull.cancel()
        self.player.video.stop()
        await self.pc.close()
