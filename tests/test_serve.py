"""`live serve` without a browser: a Python WebRTC client (aiortc) against the server as a user starts it.

What a connection gets (the avatar stream, the loop's figures), what is refused and how (bad offers, unknown
avatars, uploads that are not photos, too many connections, a remote host without HTTPS or token), and that
the server keeps serving the others through all of it. The real-browser tests are test_serve_browser.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from bench.browser_session import live_server, server_output, wait_until, wait_until_idle
from tests.conftest import ROOT, needs_shared
from tests.serve_support import clip, turned_face_clip
from tests.webrtc_client import Client, http, stream


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with live_server("--max-upload-mb", "1", home=tmp_path_factory.mktemp("serve_home")) as (url, proc):
        yield url, proc


def run(coro):
    return asyncio.run(coro)


def test_a_connection_gets_the_avatar_stream_and_the_loops_figures(server):
    url, _ = server

    async def session():
        c = Client(url, str(clip()))
        status, answer = await c.start()
        assert status == 200, answer
        await c.wait_frames(45, 90)
        await c.wait_written(30, 60)
        listed = (await asyncio.to_thread(http, url + "api/stats"))[1]["connections"]
        await c.close()
        return c, answer, listed

    c, answer, listed = run(session())
    assert {shape for _, shape in c.frames} == {(512, 512, 3)}       # the run's output size
    last = c.stats[-1]
    assert last["id"] == answer["id"] and last["avatar"] == "demo"
    assert last["face_share"] >= 0.9, last          # the clip's face was tracked in the browser's frames
    assert last["added_ms"] > 0 and last["track_ms"] > 0 and last["render_ms"] > 0, last
    assert [s["id"] for s in listed] == [answer["id"]]
    assert wait_until_idle(url, 15), "the closed connection is still listed"


def test_bad_offers_are_refused_with_what_to_send(server):
    url, _ = server
    status, body = http(url + "api/offer", b"not json")
    assert status == 400 and '"sdp"' in body["error"]
    status, body = http(url + "api/offer", json.dumps({"sdp": "v=0 nonsense", "type": "offer"}).encode())
    assert status == 400 and body["error"].startswith("the offer could not be answered"), body
    status, body = http(url + "api/offer", json.dumps({"sdp": "x", "type": "offer", "avatar": "../../etc"}).encode())
    assert status == 404 and "offers demo" in body["error"], body

    async def without_video():
        from aiortc import RTCConfiguration, RTCPeerConnection
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.createDataChannel("stats")
        await pc.setLocalDescription(await pc.createOffer())
        answer = await asyncio.to_thread(http, url + "api/offer", json.dumps(
            {"sdp": pc.localDescription.sdp, "type": "offer"}).encode())
        await pc.close()
        return answer
    status, body = run(without_video())
    assert status == 400 and "no video" in body["error"], body
    status, body = http(url + "api/offer", json.dumps({"sdp": "x", "type": "offer", "avatar": [1]}).encode())
    assert status == 400, body
    assert http(url + "api/stats")[1]["connections"] == []       # nothing half-open was left behind


def test_other_web_sites_cannot_drive_a_local_server(server):
    """A loopback server has no token: a page of another site must not reach it through the user's browser
    (a form POST needs no CORS preflight; a rebound DNS name carries a foreign Host)."""
    import urllib.error
    url, _ = server
    form = urllib.request.Request(url + "api/offer", b'{"sdp": "x", "type": "offer"}', {"Content-Type": "text/plain"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(form, timeout=30)
    assert refused.value.code == 415 and "application/json" in json.loads(refused.value.read())["error"]
    rebound = urllib.request.Request(url + "api/avatars", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(rebound, timeout=30)
    assert refused.value.code == 421
    assert http(url.replace("127.0.0.1", "localhost") + "api/avatars")[0] == 200


@pytest.mark.slow   # several seconds (a server of its own, or a wait): CI's slow step
def test_a_connection_that_never_connects_is_let_go(server):
    """An answered offer whose browser vanishes before ICE completes (Stop pressed while connecting, a tab
    closed): no frame ever comes, and the server lets it go after connection.SILENT_S."""
    from live.serve.connection import SILENT_S
    url, _ = server

    async def vanish():
        from aiortc import RTCConfiguration, RTCPeerConnection
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("video", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp.replace("a=end-of-candidates\r\n", "")    # as Chromium sends it
        answer = await asyncio.to_thread(http, url + "api/offer", json.dumps({"sdp": sdp, "type": "offer"}).encode())
        await pc.close()                          # gone before connecting: no goodbye reaches the server
        return answer
    status, answer = run(vanish())
    assert status == 200, answer
    assert [c["id"] for c in http(url + "api/stats")[1]["connections"]] == [answer["id"]]
    assert wait_until_idle(url, SILENT_S + 15), "the connection that never connected is still held"


def test_uploads_that_are_not_a_usable_photo_are_refused_and_a_portrait_becomes_an_avatar(server, tmp_path):
    import cv2
    url, _ = server
    upload = url + "api/avatars"
    cases = {
        "text": (b"# my notes\nnot a photo", "image/png", 415, "not a JPEG, PNG or WebP"),
        "not said to be an image": (b"\xff\xd8\xff", "text/plain", 415, "send the request as image/jpeg"),
        "empty": (b"", "image/jpeg", 400, "empty"),
        "too large": (b"\xff\xd8\xff" + bytes(1_200_000), "image/jpeg", 413, "up to 1 MB"),
        "damaged": (b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png", 415, "does not decode"),
        "no face": (cv2.imencode(".png", np.full((400, 400, 3), 128, np.uint8))[1].tobytes(), "image/png", 422,
                    "no face"),
    }
    for what, (data, content_type, code, words) in cases.items():
        status, body = http(upload, data, content_type)
        assert status == code and words in body["error"], (what, status, body)
        assert str(tmp_path.parent) not in body["error"]     # no server paths in what the browser is told
    portrait = (clip().parent / "portrait_einstein.jpg").read_bytes()
    status, made = http(upload + "?name=einstein", portrait, "image/jpeg")
    assert status == 200 and made["id"].startswith("upload-") and made["kind"] == "warp", made
    again = http(upload + "?name=einstein", portrait, "image/jpeg")[1]
    assert again["id"] == made["id"]                       # the same photo is the same avatar
    listed = http(upload)[1]
    assert [a["id"] for a in listed["avatars"]] == ["demo", made["id"]] and listed["default"] == "demo"

    assert run(stream(url, str(clip()), 20, written=1, avatar=made["id"])).stats[-1]["avatar"] == made["id"]


@pytest.mark.slow   # several seconds (a server of its own, or a wait): CI's slow step
def test_one_connection_too_many_is_refused_and_the_others_go_on(tmp_path):
    with live_server("--max-connections", "1", home=tmp_path / "home") as (url, proc):
        async def crowd():
            first, second = Client(url, str(clip())), Client(url, str(clip()))
            assert (await first.start())[0] == 200
            await first.wait_frames(10, 90)
            refused = await second.start()
            await first.wait_frames(len(first.frames) + 10, 60)     # the first goes on
            await first.close()
            await second.close()
            await asyncio.sleep(1.0)
            third = Client(url, str(clip()))
            taken = await third.start()
            await third.wait_frames(5, 90)
            await third.close()
            return refused, taken
        (status, body), (status3, _) = run(crowd())
    assert status == 503 and "already drives 1" in body["error"] and "--max-connections" in body["error"], body
    assert status3 == 200, "the slot was not given back when the first connection closed"


@pytest.mark.slow
def test_a_client_killed_mid_stream_frees_its_connection(tmp_path):
    """A browser that vanishes (killed, network gone) sends no goodbye: the server lets it go after
    connection.SILENT_S without frames and serves the next one."""
    with live_server("--max-connections", "1", home=tmp_path / "home") as (url, proc):
        script = ("import asyncio, os, signal, sys\n"
                  "from tests.webrtc_client import Client\n"
                  "async def main():\n"
                  f"    c = Client({url!r}, {str(clip())!r})\n"
                  "    assert (await c.start())[0] == 200\n"
                  "    await c.wait_frames(15, 90)\n"
                  "    os.kill(os.getpid(), signal.SIGKILL)\n"
                  "asyncio.run(main())\n")
        killed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, timeout=180)
        assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
        assert wait_until_idle(url, 60), "the killed client's connection was never let go"

        run(stream(url, str(clip()), 5))                 # (asserts the offer is answered 200)
    assert "sent no frame for 10 s" in server_output(proc)      # let go by the silence rule, not by chance


@contextlib.contextmanager
def sigint_ignored_here(ignored: bool):
    """SIGINT ignored in this process meanwhile, so the processes it starts inherit it ignored."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignored else None
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, before)


@pytest.mark.slow   # a server of its own for each: CI's slow step
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "SIGINT to a server started ignoring it"])
def test_a_server_stops_on_ctrl_c_or_sigterm_with_a_browser_still_connected(tmp_path, stop):
    """The connection is closed and the process ends, also when it started with SIGINT ignored (as a script's
    background job does). (aiohttp's own signal handling ran the closing while asyncio.run cancelled every task,
    and aiortc's close waited for ever on its own cancelled tasks: a server with a browser connected never
    stopped.)"""
    with sigint_ignored_here("ignoring" in stop), live_server(home=tmp_path / "home") as (url, proc):
        async def session():
            c = Client(url, str(clip()))
            assert (await c.start())[0] == 200
            await c.wait_frames(15, 90)
            proc.send_signal(getattr(signal, stop.split()[0]))
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.2)             # the client keeps its side of the connection up meanwhile
            await c.close()
        run(session())
        assert proc.poll() == 0, f"live serve did not stop within 60 s of {stop} with a browser connected"
    out = server_output(proc)
    assert "ended: the server stopped" in out and "did not close within" not in out, out[-3000:]


@pytest.mark.slow   # several seconds (a server of its own, or a wait): CI's slow step
def test_a_remote_host_needs_https_and_a_token(tmp_path):
    env = {**os.environ, "LIVE_HOME": str(tmp_path / "home")}
    plain = subprocess.run([sys.executable, "-m", "live", "serve", "--host", "0.0.0.0", "--port", "0"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 2
    assert "browsers give the camera only to secure pages" in plain.stderr and "--self-signed" in plain.stderr
    with live_server("--host", "0.0.0.0", "--self-signed", home=tmp_path / "home") as (url, proc):
        parts = urllib.parse.urlsplit(url)
        token = urllib.parse.parse_qs(parts.query)["token"][0]
        assert parts.scheme == "https" and len(token) >= 20
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        base = f"https://127.0.0.1:{parts.port}/"
        status, body = http(base + "api/avatars", context=context)
        assert status == 401 and "token" in body["error"]
        status, body = http(base + "api/avatars?token=wrong" + token[5:], context=context)
        assert status == 401
        status, body = http(base + "api/avatars?token=" + token, context=context)
        assert status == 200 and body["default"] == "demo"
        served = ssl.get_server_certificate(("127.0.0.1", parts.port))
        from live.serve.tls import certificate_fingerprint
        fingerprint = certificate_fingerprint(served.encode())
        assert f"fingerprint: {fingerprint}" in "".join(proc.lines)
        # the page given the token sets a cookie; the page's script and API calls then need no token in the URL
        from http.cookiejar import CookieJar
        from urllib.request import HTTPCookieProcessor, HTTPSHandler, build_opener
        opener = build_opener(HTTPSHandler(context=context), HTTPCookieProcessor(CookieJar()))
        opener.open(base + "?token=" + token, timeout=30).read()
        assert opener.open(base + "app.js", timeout=30).status == 200
        assert http(base + "app.js", context=context)[0] == 401       # without the cookie, refused
    key = tmp_path / "home" / "config" / "serve-key.pem"
    assert key.stat().st_mode & 0o077 == 0, oct(key.stat().st_mode)
    # the certificate is kept for the next start on the same host: the fingerprint the user checked stays
    with live_server("--host", "0.0.0.0", "--self-signed", home=tmp_path / "home") as (url, proc):
        port = urllib.parse.urlsplit(url).port
        again = certificate_fingerprint(ssl.get_server_certificate(("127.0.0.1", port)).encode())
    assert again == fingerprint


def test_the_avatar_track_hands_the_encoder_only_the_newest_frame():
    from aiortc.mediastreams import MediaStreamError

    from live.serve.avatar_track import AvatarTrack, TrackSink

    async def scenario():
        track = AvatarTrack(asyncio.get_running_loop())
        sink = TrackSink(track)
        frames = [np.full((64, 48, 3), v, np.uint8) for v in (10, 20, 30)]
        await asyncio.to_thread(lambda: [sink.write(f) for f in frames])      # the loop's thread
        first = await track.recv()
        waiting = asyncio.ensure_future(track.recv())      # nothing new yet: it waits, it does not resend
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await asyncio.to_thread(sink.write, np.full((64, 48, 3), 40, np.uint8))
        second = await asyncio.wait_for(waiting, 5)
        sink.close()
        with pytest.raises(MediaStreamError):
            await asyncio.wait_for(track.recv(), 5)
        return track, first, second

    track, first, second = run(scenario())
    assert int(first.to_ndarray(format="rgb24").mean()) in (29, 30, 31)     # the newest of three (YUV rounding)
    assert int(second.to_ndarray(format="rgb24").mean()) in (39, 40, 41)
    assert track.replaced == 2 and track.sent == 2
    assert second.pts > first.pts and first.time_base == second.time_base


def test_frames_without_a_face_keep_the_avatar_stream_going(server, tmp_path):
    """A camera that shows no face (the user stepped away): the avatar keeps coming at its rest pose, and the
    figures say no face was found."""
    import av
    url, _ = server
    empty = tmp_path / "empty_room.mp4"
    with av.open(str(empty), "w") as out:
        video = out.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        for k in range(90):
            image = np.full((240, 320, 3), 90 + k % 30, np.uint8)       # a wall, lit a little unevenly
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)

    c = run(stream(url, str(empty), 30, written=20, written_s=30))
    last = c.stats[-1]
    assert last["written"] >= 20 and last["face_share"] == 0.0, last
    assert {shape for _, shape in c.frames} == {(512, 512, 3)}


@pytest.mark.slow   # makes an avatar and a direction matrix for the fixture generator first
@needs_shared
def test_a_stylegan2_avatar_is_served_like_a_warp_one(tmp_path, quick_avatar, small_directions):
    """The paper's renderer behind live serve: the same Pipeline, a generator per connection. (The quick
    avatar holds no identity limits, which each connection would measure first: seconds of CPU; off here.)"""
    with live_server("-a", str(quick_avatar), "-d", str(small_directions), "--no-identity-guard", "--backend",
                     "eager", home=tmp_path / "home") as (url, proc):
        listed = http(url + "api/avatars")[1]
        assert [(a["id"], a["kind"]) for a in listed["avatars"]] == [("me", "stylegan2")]

        c = run(stream(url, str(clip()), 10, written=10, frames_s=120))
    last = c.stats[-1]
    assert last["avatar"] == "me" and last["written"] >= 10 and last["face_share"] >= 0.9, last
    assert {shape for _, shape in c.frames} == {(512, 512, 3)}


@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="SIGUSR1 is POSIX only")
def test_a_server_asked_with_sigusr1_prints_what_each_thread_does_and_goes_on(server):
    """For a server that will not stop: `kill -USR1 PID` shows where it is stuck (the tests' harness asks when
    Ctrl-C did not stop it within 20 s, and reports what it printed)."""
    url, proc = server
    proc.send_signal(signal.SIGUSR1)
    assert wait_until(lambda: any("most recent call first" in line for line in proc.lines), 30), \
        "".join(proc.lines[-20:])
    assert http(url + "api/stats")[0] == 200          # and it still serves


@needs_shared
def test_an_upload_kept_by_an_older_version_is_made_again_from_the_photo(tmp_path):
    """Uploads are kept by content hash; one made before avatars kept their gaze table (it loads, and drew the eyes
    without one) is removed at start and made again when the photo comes back. A newer version's file and another
    server's half-written one are left alone."""
    import hashlib

    from live.serve.avatars import AvatarCatalogue
    from live.warp.create_avatar import create_warp_avatar
    from live.warp.warp_avatar import load_warp_avatar
    portrait = clip().parent / "portrait_einstein.jpg"
    photo = portrait.read_bytes()
    digest = hashlib.sha256(photo).hexdigest()[:16]
    before_tables = create_warp_avatar(portrait)
    before_tables.gaze_seen_across = None
    old = before_tables.save(tmp_path / f"{digest}.pt")         # how version 1 named it
    assert load_warp_avatar(old).gaze_seen_across is None
    others = [tmp_path / f"{'0' * 16}.v99.pt", tmp_path / f".{digest}.123-abcd.partial.pt"]
    for other in others:
        other.write_bytes(b"not this version's")
    catalogue = AvatarCatalogue([], tmp_path, max_upload_bytes=10_000_000)
    assert not old.exists() and all(o.exists() for o in others)
    assert [c.id for c in catalogue.list()] == ["demo"]
    made = catalogue.add_upload(photo, "einstein")
    assert load_warp_avatar(made.path).gaze_seen_across is not None
    again = AvatarCatalogue([], tmp_path, max_upload_bytes=10_000_000)      # a restart lists it, as it is
    assert [c.id for c in again.list()] == ["demo", made.id]


def test_the_browser_s_frame_interval_is_measured_over_every_frame_received(monkeypatch):
    """A busy event loop passes over frames when a newer one is decoded; the interval handed to the loop's budgets
    still counts them (counted where frames are taken, a busy loop would loosen its own budget)."""
    from aiortc.mediastreams import MediaStreamError

    import live.serve.avatar_track as avatar_track

    class Clock:                                   # the browser sends 30 fps
        now = 0.0

        def perf_counter(self):
            return self.now

    clock = Clock()
    monkeypatch.setattr(avatar_track, "time", clock)

    class Frame:
        def to_ndarray(self, format):
            return np.zeros((4, 4, 3), np.uint8)

    class Track:
        received = 0

        class _queue:                              # a newer frame already decoded, for 9 frames in 10
            @staticmethod
            def qsize():
                return int(Track.received % 10 != 0)

        async def recv(self):
            if Track.received == 60:
                raise MediaStreamError
            Track.received += 1
            clock.now = Track.received / 30
            return Frame()

    class Feed:
        put_ = []

        def put(self, item):
            self.put_.append(item)

    feed, counters = Feed(), {}
    asyncio.run(avatar_track.receive_frames(Track(), feed, counters))
    assert counters["received"] == 60 and counters["skipped"] == 54 and len(feed.put_) == 6
    assert all(interval == pytest.approx(1 / 30) for *_, interval in feed.put_[1:]), feed.put_


def test_only_a_recalibration_request_is_taken_from_the_page_and_nothing_it_sends_raises():
    from live.serve.connection import asks_recalibration
    assert asks_recalibration('{"recalibrate": true}')
    for message in (b'{"recalibrate": true}', '{"recalibrate": 1}', '["recalibrate"]', "true", "", "not json",
                    "[" * 5000, "[" * 1000, '{"recalibrate": true, "pad": "' + "x" * 2000 + '"}', None):
        assert not asks_recalibration(message), str(message)[:40]


def test_a_neutral_taken_turned_aside_is_told_to_the_page_which_can_take_it_again(server, tmp_path):
    """A browser's camera showing a face turned 34 degrees (Vermeer's painting as the camera): the figures say the
    neutral pose was taken askew; the page's {"recalibrate": true} on the data channel takes another (the count of
    neutrals taken goes up), as the preview window's c does."""
    camera = turned_face_clip(tmp_path / "turned.mp4", (360, 420), 30)
    url, _ = server

    async def session():
        c = Client(url, str(camera))
        try:
            status, answer = await c.start()
            assert status == 200, answer
            first = await c.wait_stats(lambda s: s.get("neutrals_taken", 0) >= 1, 60)
            c.channel.send(json.dumps({"recalibrate": True}))
            second = await c.wait_stats(lambda s: s.get("neutrals_taken", 0) >= 2, 30)
        finally:
            await c.close()
        return first, second

    first, second = run(session())
    assert first["neutral_ready"] and first["neutral_askew"][0].startswith("your head turned aside 3"), first
    assert second["neutrals_taken"] == 2 and second["neutral_askew"] == first["neutral_askew"], second
