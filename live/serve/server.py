"""`live serve`: the web server (aiohttp) and the WebRTC endpoint (aiortc).

    GET  /               the page: camera in, avatar out, the loop's figures (static/)
    GET  /api/avatars    which avatars a connection may pick
    POST /api/avatars    a photo (the request body) -> a new warp avatar for everyone
    POST /api/offer      {sdp, type, avatar} -> {sdp, type, id}: one connection, its own loop
    GET  /api/stats      every connection's figures

Everything refused is a JSON {"error": sentence} with a status that fits, and the server goes on serving
the others. A remote server (not loopback) checks its token on every request: `?token=` in the URL, or the
cookie the page got when it was opened with it.
"""

from __future__ import annotations

import asyncio
import hmac
import itertools
import json
import time
from pathlib import Path

from aiohttp import web
from loguru import logger

from live.config import LiveConfig
from live.serve.avatars import AvatarCatalogue, UploadRefused
from live.serve.connection import Connection, OfferRefused, for_the_browser
from models.errors import first_line

STATIC = Path(__file__).resolve().parent / "static"
EXTENSION = Path(__file__).resolve().parent / "extension"
TOKEN_COOKIE = "live_token"
CLOSE_TIMEOUT_S = 10.0
UPLOAD_TYPES = ("image/jpeg", "image/png", "image/webp")


def refuse(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class AvatarServer:
    def __init__(self, cfg: LiveConfig, catalogue: AvatarCatalogue, token: str | None, max_connections: int,
                 local_hosts: tuple[str, ...] = ()):
        self.cfg, self.catalogue, self.token, self.max_connections = cfg, catalogue, token, max_connections
        self.local_hosts = local_hosts      # a loopback server: the Host names it answers to (DNS rebinding)
        self.connections: dict[str, Connection] = {}
        self._ids = itertools.count(1)
        self._uploading = asyncio.Semaphore(1)      # one avatar made at a time: it takes the CPU for a second
        self.refused_full = 0

    def app(self) -> web.Application:
        max_body = int(self.cfg.serve.max_upload_mb * 1e6) + 65536
        app = web.Application(middlewares=[self._check_origin, self._check_token], client_max_size=max_body)
        app.router.add_get("/", self._static("index.html", "text/html"))
        app.router.add_get("/app.js", self._static("app.js", "text/javascript"))
        app.router.add_get("/style.css", self._static("style.css", "text/css"))
        app.router.add_get("/api/avatars", self._avatars)
        app.router.add_post("/api/avatars", self._upload)
        app.router.add_post("/api/offer", self._offer)
        app.router.add_get("/api/stats", self._stats)
        app.on_shutdown.append(self._close_all)
        return app

    @web.middleware
    async def _check_origin(self, request: web.Request, handler):
        """Other web sites must not drive this server through the user's browser. A loopback server has no token,
        so: only its own Host names (a rebound DNS name is refused), and POSTs only with the content types the
        page and the extension send, which a cross-site form cannot (it would need a CORS preflight, never
        granted here)."""
        if self.local_hosts and request.host.lower() not in self.local_hosts:
            return refuse(421, f"this server answers to {self.local_hosts[0]} only, not {request.host!r}")
        if request.method == "POST":
            wanted = UPLOAD_TYPES if request.path == "/api/avatars" else ("application/json",)
            if request.content_type not in wanted:
                return refuse(415, f"send the request as {' or '.join(wanted)}, not {request.content_type!r}")
        return await handler(request)

    @web.middleware
    async def _check_token(self, request: web.Request, handler):
        if self.token is None:
            return await handler(request)
        given = request.query.get("token") or request.cookies.get(TOKEN_COOKIE) or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return refuse(401, "this server needs its access token: open the URL it printed at start "
                               "(https://HOST:PORT/?token=...)")
        response = await handler(request)
        if request.path == "/" and request.query.get("token"):
            response.set_cookie(TOKEN_COOKIE, self.token, secure=True, httponly=True, samesite="Strict")
        return response

    def _static(self, name: str, content_type: str):
        async def handler(request: web.Request) -> web.Response:
            return web.FileResponse(STATIC / name, headers={"Content-Type": content_type,
                                                            "Cache-Control": "no-store"})
        return handler

    async def _avatars(self, request: web.Request) -> web.Response:
        return web.json_response({"avatars": [c.public() for c in self.catalogue.list()],
                                  "default": self.catalogue.default_id, "uploads": self.cfg.serve.uploads,
                                  "max_upload_mb": self.cfg.serve.max_upload_mb})

    async def _upload(self, request: web.Request) -> web.Response:
        if not self.cfg.serve.uploads:
            return refuse(403, "this server takes no uploads (serve.uploads is off); pick one of its avatars")
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refuse(413, f"the photo is too large: this server takes up to {self.cfg.serve.max_upload_mb:g} "
                               "MB (serve.max_upload_mb)")
        try:
            self.catalogue.check_upload(data)           # cheap checks before waiting for the CPU
            async with self._uploading:
                choice = await asyncio.get_running_loop().run_in_executor(
                    None, self.catalogue.add_upload, data, request.query.get("name", ""))
        except UploadRefused as e:
            return refuse(e.status, str(e))
        except Exception as e:          # a full disk, a tracker that fails: said, and the server serves on
            logger.error("an upload failed: {}", first_line(e, 300))
            return refuse(500, "the server could not make an avatar of this photo (its log says why); try "
                               "another photo or pick one of its avatars")
        logger.info("uploaded photo -> avatar {}", choice.id)
        return web.json_response(choice.public())

    async def _offer(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
            sdp, kind, avatar_id = body["sdp"], body.get("type", "offer"), body.get("avatar")
            if kind != "offer" or not isinstance(sdp, str) or not isinstance(avatar_id, (str, type(None))):
                raise ValueError
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            return refuse(400, 'send JSON {"sdp": the offer\'s SDP, "type": "offer", "avatar": an id or null}')
        try:
            avatar = self.catalogue.get(avatar_id)
        except KeyError as e:
            return refuse(404, e.args[0])
        limit = self.max_connections
        if len(self.connections) >= limit:
            self.refused_full += 1
            return refuse(503, f"this server already drives {limit} avatar streams (serve.max_connections): close "
                               "one, or start it with a higher --max-connections if the machine can keep up")
        connection = Connection(f"c{next(self._ids)}", self.cfg, avatar, on_closed=self._forget)
        self.connections[connection.id] = connection
        try:
            answer = await connection.answer(sdp, kind)
        except OfferRefused as e:
            await connection.close("refused")
            return refuse(400, str(e))
        except Exception as e:          # an SDP aiortc cannot read
            await connection.close("refused")
            return refuse(400, f"the offer could not be answered: {for_the_browser(first_line(e, 200))}")
        logger.info("connection {}: avatar {}", connection.id, avatar.id)
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "id": connection.id})

    def _forget(self, connection: Connection) -> None:
        self.connections.pop(connection.id, None)

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"connections": [c.stats() for c in self.connections.values()],
                                  "max_connections": self.max_connections,
                                  "refused_full": self.refused_full})

    async def _close_all(self, app: web.Application) -> None:
        self.max_connections = 0                # an offer still being answered is refused from now on
        connections = list(self.connections.values())
        await asyncio.gather(*(c.close("the server stopped") for c in connections), return_exceptions=True)
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + CLOSE_TIMEOUT_S        # one wait for all of them, not one each
        for c in connections:
            if not await loop.run_in_executor(None, c.join, max(deadline - time.monotonic(), 0.0)):
                logger.error("connection {}: its loop did not stop within {:.0f} s", c.id, CLOSE_TIMEOUT_S)
