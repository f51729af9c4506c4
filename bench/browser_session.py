"""A real browser against `live serve`: the server started as a user starts it, a clip as the browser's fake
camera, headless Chromium driven by Selenium, frames grabbed in the page, and the follow check (track both
sides of what a page shows; do the avatar's jaw and yaw follow the driver's, and at what lag?).
Used by `python -m bench serve` and tests/test_serve_browser.py."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXTENSION = ROOT / "live" / "serve" / "extension"
CHROMIUM_INSTALL = "apt-get install -y chromium chromium-driver   (Debian/Ubuntu, as root; then pip install selenium)"
LAG_STEP_MS = 16.7      # the lag search's step: half a frame at 30 fps
URL_LINE = re.compile(r"live serve: open (\S+)")


def chromium_paths() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@contextlib.contextmanager
def live_server(*args: str, home: Path, timeout: float = 60.0):
    """`python -m live serve --port 0 ARGS` in its own process; yields (url, process). Stopped with SIGINT."""
    env = {**os.environ, "LIVE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "live", "serve", "--port", "0", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + timeout
        url = None
        while True:         # the banner: the URL line, then the fingerprint, avatars and extension lines
            line = proc.stdout.readline()
            if not line:
                raise AssertionError("live serve ended before serving:\n" + "".join(lines))
            lines.append(line)
            m = URL_LINE.search(line)
            url = m.group(1) if m else url
            if url and line.lstrip().startswith("browser extension"):
                break
            if time.monotonic() > deadline:
                raise AssertionError("live serve printed no URL:\n" + "".join(lines))
        proc.lines = lines
        # keep reading what it prints: a full pipe would block the server mid-run
        proc.reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
        proc.reader.start()
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:      # what was it doing? (live serve prints its threads on SIGUSR1)
                if hasattr(signal, "SIGUSR1"):
                    proc.send_signal(signal.SIGUSR1)
                    time.sleep(2)
                proc.kill()
                proc.wait()
                if getattr(proc, "reader", None) is not None:
                    proc.reader.join(5)
                tail = "".join(lines[-80:])
                warnings.warn(f"live serve did not stop within 20 s of Ctrl-C; killed. Its last lines:\n{tail}")


def server_output(proc) -> str:
    """Everything the server printed (after it stopped)."""
    proc.reader.join(10)
    return "".join(proc.lines)


def server_connections(url: str) -> list[dict]:
    """What the server's /api/stats lists now."""
    import json
    import urllib.request
    with urllib.request.urlopen(url + "api/stats", timeout=30) as r:
        return json.loads(r.read())["connections"]


def wait_until(condition, timeout: float, every: float = 0.25) -> bool:
    """Whether `condition()` came true, polling it every `every` s for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)
    return True


def wait_until_idle(url: str, timeout: float) -> bool:
    """Whether the server holds no connection, waiting up to `timeout` s for it to let them go."""
    return wait_until(lambda: not server_connections(url), timeout, every=0.5)


def clip_to_y4m(clip: Path, out: Path, size: int = 320, seconds: float = 12.0) -> float:
    """The clip's first `seconds`, centre-cropped square at `size` px, as an uncompressed Y4M (what Chromium's fake
    camera plays, in a loop); its fps."""
    import cv2
    cap = cv2.VideoCapture(str(clip))
    fps = float(round(cap.get(cv2.CAP_PROP_FPS) or 25.0))
    with open(out, "wb") as f:
        f.write(f"YUV4MPEG2 W{size} H{size} F{round(fps)}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(int(seconds * fps)):
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            side = min(h, w)
            crop = frame[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2]
            f.write(b"FRAME\n" + cv2.cvtColor(cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA),
                                              cv2.COLOR_BGR2YUV_I420).tobytes())
    cap.release()
    return fps


def chromium(fake_video: Path, extension: Path | None = None):
    """A headless Chromium whose camera plays `fake_video`, permission prompts answered yes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    browser, driver = chromium_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={fake_video}",
                 "--autoplay-policy=no-user-gesture-required", "--disable-features=WebRtcHideLocalIpsWithMdns",
                 "--window-size=1200,900"):
        opts.add_argument(flag)
    if extension is not None:
        opts.add_argument(f"--load-extension={extension}")
        opts.add_argument(f"--disable-extensions-except={extension}")
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})     # the page's console, for script_errors()
    return webdriver.Chrome(service=Service(driver), options=opts)


def script_errors(driver) -> list[str]:
    """The page's uncaught script errors so far (its console), e.g. a call to a function that is not there."""
    return [e["message"] for e in driver.get_log("browser") if "Uncaught" in e.get("message", "")]


# Grabs the named video elements together every `every_ms` into window.__shots (JPEG data URLs, at most 320 px
# wide), n times.
RECORDER = """
const [ids, everyMs, n] = arguments;
window.__shots = [];
const canvas = document.createElement("canvas");
let k = 0;
const timer = setInterval(() => {
  const shot = {t: performance.now()};
  for (const id of ids) {
    const v = document.getElementById(id);
    if (!v || !v.videoWidth) return;
    const scale = Math.min(1, 320 / v.videoWidth);   // small grabs: cheap enough for several pages at once
    canvas.width = Math.round(v.videoWidth * scale); canvas.height = Math.round(v.videoHeight * scale);
    canvas.getContext("2d").drawImage(v, 0, 0, canvas.width, canvas.height);
    shot[id] = canvas.toDataURL("image/jpeg", 0.85);
  }
  window.__shots.push(shot);
  if (++k >= n) clearInterval(timer);
}, everyMs);
"""


def start_recording(driver, ids: tuple[str, str], every_ms: int, n: int) -> None:
    """The page grabs the named videos together every `every_ms`, n times, on its own (several pages at once)."""
    driver.execute_script(RECORDER, list(ids), every_ms, n)


def collect_recording(driver, ids: tuple[str, str], n: int, timeout: float = 90.0) -> list[dict]:
    """What start_recording grabbed: [{t (ms), id: RGB image}] (waits for all n)."""
    import cv2
    shots: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(shots) < n and time.monotonic() < deadline:
        time.sleep(0.5)
        shots += driver.execute_script("return window.__shots.splice(0, 30);")
    out = []
    for shot in shots:
        decoded = {"t": shot["t"]}
        for i in ids:
            data = base64.b64decode(shot[i].split(",", 1)[1])
            decoded[i] = cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        out.append(decoded)
    return out


def record(driver, ids: tuple[str, str], every_ms: int, n: int, timeout: float = 90.0) -> list[dict]:
    """n pairs of frames grabbed in the page at the same moments: [{t (ms), id: RGB image}]."""
    start_recording(driver, ids, every_ms, n)
    return collect_recording(driver, ids, n, timeout)


def wait_for(driver, script: str, timeout: float, what: str):
    """The script's value once truthy; else an error that shows what the page said (its notice, its state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.25)
    seen = driver.execute_script("const n = document.getElementById('notice'); return [n ? n.textContent : null, "
                                 "window.liveState || window.callState || null]")
    raise AssertionError(f"{what} did not happen within {timeout:.0f} s; the page shows {seen}")


def tracked_params(images, seconds) -> np.ndarray:
    """[N, 15] face parameters of RGB images tracked in order as video (the live loop's estimator), NaN rows
    without a face; `seconds`: each image's time."""
    from live.config import LiveConfig
    from live.tracking.estimator import make_estimator
    est = make_estimator(LiveConfig().tracking)
    try:
        return np.array([est(image, k, t).params for k, (image, t) in enumerate(zip(images, seconds))])
    finally:
        est.close()


def follow_check(shots: list[dict], driver_id: str, avatar_id: str, max_lag_ms: float = 1000.0) -> dict:
    """Track both sides; at the lag that best aligns them, the Pearson of jaw and of yaw (driver vs avatar).
    lag_ms: how far the avatar trails what the page shows of the driver (glass to glass, roughly, when both
    come from one capture of the camera)."""
    from models.face.landmarks import PARAM_NAMES
    seconds = [s["t"] / 1e3 for s in shots]
    drv = tracked_params([s[driver_id] for s in shots], seconds)
    ava = tracked_params([s[avatar_id] for s in shots], seconds)
    cols = [PARAM_NAMES.index("jaw"), PARAM_NAMES.index("yaw")]
    # by time, not by sample: a busy page's timer fires late, so the grabs are not evenly spaced
    t = np.array([s["t"] for s in shots], dtype=np.float64)
    found = np.isfinite(drv[:, cols]).all(1)
    best = None
    for lag in np.arange(0.0, max_lag_ms + 1e-9, LAG_STEP_MS):
        late = t - lag                      # the driver as shown `lag` ms before each avatar grab
        inside = (late >= t[found][0]) & np.isfinite(ava[:, cols]).all(1) if found.any() else found
        if inside.sum() < 20:
            continue
        a = np.stack([np.interp(late[inside], t[found], drv[found, c]) for c in cols], 1)
        b = ava[inside][:, cols]
        r = [float(np.corrcoef(a[:, j], b[:, j])[0, 1]) for j in range(2)]
        if best is None or sum(r) > sum(best["r"]):
            best = {"lag": float(lag), "r": r, "pairs": int(inside.sum())}
    assert best is not None, "too few frames with a face on both sides"
    return {"jaw_r": round(best["r"][0], 3), "yaw_r": round(best["r"][1], 3), "lag_ms": round(best["lag"]),
            "pairs": best["pairs"], "shots": len(shots), "every_ms": round(float(np.median(np.diff(t))), 1),
            "driver_found": float(found.mean()), "avatar_found": float(np.isfinite(ava).all(1).mean())}


# Keeps every video track a page's RTCPeerConnections send in window.__sentTracks; installed before the page's
# (and its extensions') scripts, so what an extension sends to the server can be shown beside what comes back.
SENT_TRACKS = """
(() => {
  if (window.__sentTracks) return;
  const addTrack = RTCPeerConnection.prototype.addTrack;
  window.__sentTracks = [];
  RTCPeerConnection.prototype.addTrack = function (track, ...streams) {
    if (track && track.kind === "video") window.__sentTracks.push(track);
    return addTrack.call(this, track, ...streams);
  };
})();
"""


def watch_sent_tracks(driver) -> None:
    """From the next page load on, the page keeps the video tracks it sends over WebRTC (show_sent_track)."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": SENT_TRACKS})


def show_sent_track(driver, element_id: str = "sent", timeout: float = 30.0) -> None:
    """A video element `element_id` playing the newest live track the page sends (watch_sent_tracks): the very
    frames the server receives, for record() beside what the page shows back (a call app's own self-view is
    another capture of the camera, which Chromium's fake camera starts at its own point of the clip)."""
    live = "(window.__sentTracks || []).filter((t) => t.readyState === 'live')"
    wait_for(driver, f"return {live}.length > 0", timeout, "a track sent to the server")
    driver.execute_script(f"""const v = document.createElement("video");
      v.id = arguments[0]; v.muted = true; v.autoplay = true; v.playsInline = true;
      v.srcObject = new MediaStream([{live}.pop()]); document.body.appendChild(v); v.play().catch(() => null);""",
                          element_id)
    wait_for(driver, f"return document.getElementById('{element_id}').videoWidth > 0", timeout, "the sent video")


def unpacked_extension_id(folder: Path) -> str:
    """The id Chromium gives an unpacked extension: SHA-256 of its absolute path, hex digits mapped to a-p."""
    import hashlib
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]
    return digest.translate(str.maketrans("0123456789abcdef", "abcdefghijklmnop"))


def set_extension_server(driver, folder: Path, server: str) -> None:
    """Point the extension at `server` through its own options page, as a user would."""
    from selenium.webdriver.common.by import By
    driver.get(f"chrome-extension://{unpacked_extension_id(folder)}/options.html")
    field = driver.find_element(By.ID, "server")
    field.clear()
    field.send_keys(server)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait_for(driver, "return document.getElementById('status').textContent === 'Saved.'", 10, "saving the options")


@contextlib.contextmanager
def static_site(folder: Path):
    """Files of `folder` on http://127.0.0.1:PORT/ (another origin than the live server, as a call app is)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def who_is_shown(shots: list[dict], driver_id: str, avatar_id: str, photo_rgb: np.ndarray, samples: int = 20) -> dict:
    """Median dlib identity distance of the shown avatar to the avatar's photo and to the driver beside it (under
    0.6: the same person): an avatar that follows is the avatar, not the driver's own face sent back."""
    import cv2

    from models.identity.embedding import default_identity, distance

    def large(image: np.ndarray) -> np.ndarray:      # dlib's detector misses faces under about 80 px
        return image if min(image.shape[:2]) >= 480 else cv2.resize(image, None, fx=2, fy=2)
    identity = default_identity()
    picked = shots[:: max(len(shots) // samples, 1)][:samples]
    photo = identity.embed([photo_rgb])[0]
    shown = identity.embed([large(s[avatar_id]) for s in picked])
    drivers = identity.embed([large(s[driver_id]) for s in picked])
    ok = np.isfinite(shown).all(1) & np.isfinite(drivers).all(1)
    return {"to_photo": round(float(np.median(distance(shown[ok], photo[None]))), 3),
            "to_driver": round(float(np.median(distance(shown[ok], drivers[ok]))), 3), "faces": int(ok.sum()),
            "found_shown": int(np.isfinite(shown).all(1).sum()), "found_driver": int(np.isfinite(drivers).all(1).sum()),
            "samples": len(picked)}
