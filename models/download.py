"""Resumable HTTP downloads of weight files, Google Drive included.

The bytes go to `<dest>.part`; an interrupted download resumes from there with a Range
request (a server that ignores Range makes it start over, never append the same bytes
twice). Only a complete, verified file is moved to `dest`: the caller passes a `verify`
callback (size, sha256 and loading with the project's own loaders) and a file that fails it
is removed, so nothing half-made ever looks like a model.

Google Drive answers large files with an HTML page ("can't scan this file for viruses")
holding a form whose fields confirm the download; the form is followed. Its quota page
("Too many users have viewed or downloaded this file recently") and other HTML answers in
place of a binary file become DownloadError, never a saved "model".
"""

from __future__ import annotations

import errno
import html
import re
import shutil
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Callable

from loguru import logger

from models.atomic_files import commit
from models.weights_io import file_sha256 as sha256_file

CHUNK = 1 << 20
USER_AGENT = "live-models/1 (+https://github.com/)"
RETRIES = 4           # connection drops resumed per URL before giving up
TIMEOUT_S = 30.0      # socket timeout: a stalled server counts as a dropped connection


class DownloadError(RuntimeError):
    """A download that could not complete; the message says what to do."""


@dataclass
class Fetched:
    path: Path
    size: int
    sha256: str
    url: str
    resumed_from: int  # bytes already on disk when the last successful attempt started


def gdrive_file_id(url: str) -> str | None:
    """The file id of a Google Drive link (…/file/d/ID/view, …?id=ID), else None."""
    parsed = urllib.parse.urlparse(url)
    if "drive.google.com" not in parsed.netloc and "drive.usercontent.google.com" not in parsed.netloc:
        return None
    m = re.search(r"/file/d/([\w-]+)", parsed.path)
    if m:
        return m.group(1)
    ids = urllib.parse.parse_qs(parsed.query).get("id")
    return ids[0] if ids else None


def direct_url(url: str) -> str:
    """Turn a Drive share link into its download endpoint; other URLs stay as they are."""
    file_id = gdrive_file_id(url)
    if file_id:
        return f"https://drive.usercontent.google.com/download?id={file_id}&export=download"
    return url


_QUOTA = re.compile(r"quota exceeded|too many users have viewed or downloaded", re.I)


def _confirm_url(page: str, base_url: str) -> str | None:
    """The next URL from a Drive confirmation page: its download form, or a confirm= link."""
    form = re.search(r'<form[^>]*id="download-form"[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S | re.I) \
        or re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page, re.S | re.I)
    if form:
        action = urllib.parse.urljoin(base_url, html.unescape(form.group(1)))
        fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2)))
        if fields:
            return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(
                {k: html.unescape(v) for k, v in fields.items()})
    link = re.search(r'href="([^"]*confirm=[^"]+)"', page)
    if link:
        return urllib.parse.urljoin(base_url, html.unescape(link.group(1)))
    return None


def _explain_http(e: urllib.error.HTTPError, url: str, name: str) -> DownloadError:
    host = urllib.parse.urlparse(url).netloc
    if e.code == 404:
        return DownloadError(f"{url}: not found (HTTP 404). The file has moved or the registry entry is out of date; "
                             f"download it by hand from the project that publishes it and run "
                             f"`live models import PATH --name {name}`.")
    if e.code in (403, 429) and "google" in host:
        return DownloadError(f"{url}: Google Drive refused the download (HTTP {e.code}), usually its daily download "
                             f"quota for this file. Try again in a few hours, or open the link in a browser, save "
                             f"the file and run `live models import PATH --name {name}`.")
    if e.code in (401, 403):
        return DownloadError(f"{url}: access denied (HTTP {e.code}). The file may need a login or may no longer be "
                             f"public; download it by hand and run `live models import PATH --name {name}`.")
    return DownloadError(f"{url}: the server answered HTTP {e.code} {e.reason}. Try again later.")


def _open(url: str, offset: int, name: str):
    """GET url (from byte `offset`), following Drive confirmation pages. Returns the response."""
    for _ in range(3):  # at most two confirmation pages
        req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        if offset:
            req.add_header("Range", f"bytes={offset}-")
        try:
            resp = urllib.request.urlopen(req, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as e:
            if e.code == 416 and offset:  # the range starts at or past the end: start over
                return _open(url, 0, name)
            raise _explain_http(e, url, name) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError) as e:
            reason = getattr(e, "reason", e)
            raise DownloadError(f"cannot reach {urllib.parse.urlparse(url).netloc} ({reason}). Check the network "
                                f"connection or proxy (HTTPS_PROXY), or download {url} by hand and run "
                                f"`live models import PATH --name {name}`.") from None
        if not resp.headers.get_content_type().startswith("text/html"):
            return resp
        page = resp.read(2_000_000).decode("utf-8", "replace")
        resp.close()
        if _QUOTA.search(page):
            raise DownloadError(f"{url}: Google Drive's download quota for this file is used up for now. Try again "
                                f"in a few hours, or open the link in a browser, save the file and run "
                                f"`live models import PATH --name {name}`.")
        nxt = _confirm_url(page, resp.geturl())
        if nxt is None:
            title = re.search(r"<title>(.*?)</title>", page, re.S | re.I)
            raise DownloadError(f"{url}: the server sent a web page ({(title.group(1).strip() if title else 'untitled')!r}) "
                                f"instead of the file. Open the link in a browser, save the file and run "
                                f"`live models import PATH --name {name}`.")
        logger.debug("following a download confirmation page to {}", nxt)
        url = nxt
    raise DownloadError(f"{url}: too many confirmation pages; download it by hand and run `live models import`.")


def _check_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if needed and free < needed + (64 << 20):
        raise DownloadError(f"not enough disk space in {directory}: {needed / 1e6:.0f} MB needed, {free / 1e6:.0f} MB "
                            f"free. Free some space, or set LIVE_HOME to a folder on a larger disk.")


def download(urls: list[str], dest: Path, *, name: str, size: int | None = None, sha256: str | None = None,
             verify: Callable[[Path], None] | None = None, progress: bool = True) -> Fetched:
    """Download the first URL that works to `dest`, resuming `dest.part`; verify; move into place.

    Each connection drop is resumed (up to RETRIES times per URL). A size or sha256 mismatch, or
    a `verify` failure, deletes the partial file and raises DownloadError: those bytes are wrong,
    resuming them would only repeat the error.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if size:
        _check_space(dest.parent, size - (part.stat().st_size if part.exists() else 0))
    errors = []
    for raw_url in urls:
        url = direct_url(raw_url)
        try:
            resumed = _download_one(url, part, name=name, size=size, progress=progress)
        except DownloadError as e:
            errors.append(str(e))
            logger.warning("{}", e)
            continue
        got_size = part.stat().st_size
        if size and got_size != size:
            part.unlink()
            raise DownloadError(f"{url}: got {got_size} bytes, expected {size}. The server sent a different file; "
                                f"the partial download was removed. Try again, or report the registry entry.")
        digest = sha256_file(part)
        if sha256 and digest != sha256.lower():
            part.unlink()
            raise DownloadError(f"{url}: sha256 {digest} does not match the registry's {sha256}: the bytes are not "
                                f"the published file (corrupted in transit, or the file was replaced). The partial "
                                f"download was removed; try again.")
        if verify is not None:
            try:
                verify(part)
            except Exception as e:
                part.unlink()
                raise DownloadError(f"{url}: the downloaded file does not load as {name}: {e}. It was removed.") from None
        commit(part, dest)      # (the .part is this module's own resumable temporary file)
        return Fetched(dest, got_size, digest, url, resumed)
    raise DownloadError(errors[-1] if len(errors) == 1 else "every URL failed:\n  " + "\n  ".join(errors))


def _download_one(url: str, part: Path, *, name: str, size: int | None, progress: bool) -> int:
    """Fill `part` from url, resuming across dropped connections. Returns the offset of the last attempt."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (TextColumn(f"[bold]{name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=True) as bar:
        task = bar.add_task("download", total=size)
        for attempt in range(RETRIES + 1):
            offset = part.stat().st_size if part.exists() else 0
            if size and offset == size:
                return offset
            resp = _open(url, offset, name)
            with resp:
                if offset and resp.status != 206:
                    logger.info("{} ignored the resume request: starting over", urllib.parse.urlparse(url).netloc)
                    offset = 0
                total = _total_size(resp, offset)
                if size and total and total != size:
                    raise DownloadError(f"{url}: the server offers {total} bytes, the registry expects {size}. "
                                        f"Not downloading a different file.")
                bar.update(task, total=total or size, completed=offset)
                try:
                    with open(part, "ab" if offset else "wb") as f:
                        while True:
                            block = resp.read(CHUNK)
                            if not block:
                                break
                            f.write(block)
                            bar.advance(task, len(block))
                except OSError as e:
                    if e.errno == errno.ENOSPC:
                        raise DownloadError(f"disk full while writing {part}. Free some space (or set LIVE_HOME to a "
                                            f"larger disk) and run the same command again: it resumes.") from None
                    if not isinstance(e, (ConnectionError, socket.timeout)):
                        raise
                    logger.warning("connection lost at {} bytes ({}); resuming", part.stat().st_size, e)
                    time.sleep(min(2**attempt * 0.2, 5))
                    continue
                except HTTPException as e:
                    logger.warning("connection lost at {} bytes ({}); resuming", part.stat().st_size, e)
                    time.sleep(min(2**attempt * 0.2, 5))
                    continue
            have = part.stat().st_size
            if total and have < total:
                logger.warning("connection closed at {} of {} bytes; resuming", have, total)
                time.sleep(min(2**attempt * 0.2, 5))
                continue
            return offset
    raise DownloadError(f"{url}: the connection kept dropping ({RETRIES + 1} attempts). Run the same command again "
                        f"to resume from {part.stat().st_size} bytes.")


def _total_size(resp, offset: int) -> int | None:
    content_range = resp.headers.get("Content-Range")
    if content_range and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else None
    length = resp.headers.get("Content-Length")
    return (int(length) + (offset if resp.status == 206 else 0)) if length and length.isdigit() else None
