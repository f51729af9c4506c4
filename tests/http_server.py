"""A local HTTP server (127.0.0.1) that serves real files and misbehaves on purpose.

Routes (FILE is a name registered with `serve`):
  /ok/FILE        the file, with Range support
  /drop/FILE      the first request sends half the bytes and closes; later ones are /ok
  /norange/FILE   ignores Range: always 200 and the whole file
  /wrong/FILE     the same length, different bytes
  /stall/FILE     sends half, then stops sending (the client must time out and resume)
  /drive/FILE     a Google-Drive-like confirmation page whose form leads to /confirmed/FILE
  /confirmed/FILE the file, only with confirm=t (else the page again)
  /quota/FILE     Drive's "too many users" page
  /html/FILE      some unrelated web page
  /404/FILE, /403/FILE
Every request is logged in `requests` as (path, Range header or None).
"""

from __future__ import annotations

import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

DRIVE_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="{action}" method="get">
<input type="submit" value="Download anyway"/>
<input type="hidden" name="id" value="{name}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="0b1c-uuid">
</form></body></html>"""
QUOTA_PAGE = """<html><head><title>Google Drive - Quota exceeded</title></head><body>
<p>Too many users have viewed or downloaded this file recently. Please try accessing the file again later.</p>
</body></html>"""


class MisbehavingServer:
    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.dropped: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                parsed = urllib.parse.urlparse(self.path)
                parts = parsed.path.strip("/").split("/", 1)
                mode, name = (parts + [""])[:2]
                data = server.files.get(name)
                if data is None or mode == "404":
                    return self._send(404, b"not found", "text/plain")
                if mode == "403":
                    return self._send(403, b"forbidden", "text/plain")
                if mode == "quota":
                    return self._send(200, QUOTA_PAGE.encode(), "text/html; charset=utf-8")
                if mode == "html":
                    return self._send(200, b"<html><head><title>Sign in</title></head><body>hi</body></html>",
                                      "text/html")
                if mode == "drive":
                    return self._send(200, DRIVE_PAGE.format(action=f"/confirmed/{name}", name=name).encode(),
                                      "text/html; charset=utf-8")
                if mode == "confirmed":
                    if urllib.parse.parse_qs(parsed.query).get("confirm") != ["t"]:
                        return self._send(200, DRIVE_PAGE.format(action=f"/confirmed/{name}", name=name).encode(),
                                          "text/html")
                    return self._file(data, ranged=True)
                if mode == "wrong":
                    bad = bytearray(data)
                    mid = len(bad) // 2
                    bad[mid:mid + 1024] = bytes(b ^ 0xFF for b in bad[mid:mid + 1024])
                    return self._file(bytes(bad), ranged=True)
                if mode == "norange":
                    return self._file(data, ranged=False)
                if mode in ("drop", "stall") and name not in server.dropped:
                    server.dropped.add(name)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    if mode == "stall":
                        time.sleep(3)
                    self.close_connection = True
                    return
                return self._file(data, ranged=True)

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, data, ranged):
                rng = self.headers.get("Range")
                if ranged and rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        return self._send(416, b"", "text/plain")
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    body = data[start:]
                else:
                    self.send_response(200)
                    body = data
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, mode: str, name: str) -> str:
        return f"{self.base}/{mode}/{name}"

    def serve(self, name: str, path: Path) -> None:
        self.files[name] = Path(path).read_bytes()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
