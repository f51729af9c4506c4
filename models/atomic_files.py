"""Every file `live` writes for the user goes through here: whole or not at all.

A writer writes to a temporary name beside the target, unique to it (`.NAME.PID-RANDOM.partial`
plus the target's suffix, which some writers need: numpy appends `.npz` to a name without it,
OpenVINO derives its `.bin` from the `.xml`'s name), flushes it to disk, renames it over the
target (one atomic step on every platform we run on) and flushes the folder, so the rename
itself survives a power cut. A writer that fails removes its temporary file. One that is
killed (SIGKILL, power) cannot: its file is left, never under the final name, and the next
writer of the same target, or the next start of `live` (`clean_stale_partials` over the
user dirs), removes it once the process that wrote it is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

PARTIAL = "partial"
# the temporary name: .NAME.PID-RANDOM.partial[SUFFIX]; NAME is the target's stem
_PARTIAL_NAME = re.compile(r"^\.(?P<stem>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.partial(?P<suffix>\.[^.]*)?$")
STALE_AFTER_S = 24 * 3600.0      # a temporary file this old is stale even if its writer's PID was reused


def temporary_name(path: str | Path) -> Path:
    """A name beside `path` unique to this writer (two processes writing one target never share a file)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.{PARTIAL}{path.suffix}")


def _fsync_folder(folder: Path) -> None:
    if os.name != "posix":          # Windows cannot open a folder for fsync; its rename is journalled
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | Path, companions: tuple[str, ...] = ()):
    """A temporary path beside PATH to write to; on success it is flushed and renamed over PATH, else removed.

    companions: suffixes of files the writer makes beside the temporary one from its name (OpenVINO's
    `.bin` beside its `.xml`): each is renamed to PATH with that suffix first, so PATH appears last.
    """
    path = Path(path)
    if path.is_symlink():           # write where the link points (a dotfiles config stays a link)
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_partials(path.parent, stem=path.stem)
    tmp = temporary_name(path)
    extra = [(tmp.with_suffix(s), path.with_suffix(s)) for s in companions]
    try:
        yield tmp
        for written, final in extra + [(tmp, path)]:
            commit(written, final, sync_folder=False)
        _fsync_folder(path.parent)
    finally:
        for leftover in [tmp] + [w for w, _ in extra]:
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def commit(written: Path, final: Path, sync_folder: bool = True) -> None:
    """A whole file under its final name: flushed to disk, the old file's permissions kept (a config made
    private stays private), renamed over `final`, and the folder flushed so the rename survives a power cut."""
    _fsync_file(written)
    if final.exists():
        with contextlib.suppress(OSError):
            shutil.copymode(final, written)
    _replace(written, final)
    if sync_folder:
        _fsync_folder(final.parent)


def _replace(src: Path, dst: Path, attempts: int = 10) -> None:
    """os.replace; on Windows, where a reader (an antivirus scan, a player) holding `dst` makes it fail for a
    moment, tried again for up to a second."""
    for attempt in range(attempts):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == attempts - 1:
                raise
            time.sleep(0.1)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def save_torch_atomic(obj: object, path: str | Path) -> Path:
    import torch
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_npz_atomic(path: str | Path, compressed: bool = True, **arrays) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:       # a file object: numpy then adds no suffix of its own
            (np.savez_compressed if compressed else np.savez)(f, **arrays)
    return Path(path)


def _process_alive(pid: int) -> bool:
    """Whether a process with this PID runs. Unsure: True (the file's age then decides)."""
    if pid == os.getpid():
        return True
    if os.name == "nt":             # os.kill(pid, 0) would send Ctrl+C there: ask the kernel for the process
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                 # someone else's process (PermissionError): alive
        return True
    return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes
    query_limited_information, still_active = 0x1000, 259
    try:
        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(query_limited_information, False, pid)
        if not handle:
            return kernel32.GetLastError() == 5          # access denied: it exists
        try:
            code = ctypes.c_ulong()
            return not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)) or code.value == still_active
        finally:
            kernel32.CloseHandle(handle)
    except Exception:
        return True


def is_partial(path: str | Path) -> bool:
    return _PARTIAL_NAME.match(Path(path).name) is not None


def clean_stale_partials(folder: str | Path, stem: str | None = None, recursive: bool = False) -> list[Path]:
    """Remove the temporary files of writers that are gone (their process ended, or the file is a day old).
    `stem`: only those of targets with this stem. Never fails: a file it cannot remove is left."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = f".{glob_escape(stem)}.*.{PARTIAL}*" if stem is not None else f".*.{PARTIAL}*"
    removed = []
    now = time.time()
    for f in (folder.rglob(pattern) if recursive else folder.glob(pattern)):
        m = _PARTIAL_NAME.match(f.name)
        if m is None or (stem is not None and m["stem"] != stem):
            continue
        try:
            stale = not _process_alive(int(m["pid"])) or now - f.stat().st_mtime > STALE_AFTER_S
            if stale:
                f.unlink()
                removed.append(f)
        except OSError:
            pass
    return removed


def glob_escape(text: str) -> str:
    """`text` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def write_image_atomic(path: str | Path, image_rgb: np.ndarray) -> Path:
    """An RGB uint8 image as PNG or JPEG (by the name's suffix), atomically. OSError saying what to fix."""
    import cv2
    path = Path(path)
    try:
        ok, encoded = cv2.imencode(path.suffix.lower() or ".png", np.ascontiguousarray(image_rgb[:, :, ::-1]))
    except cv2.error:
        ok = False
    if not ok:
        raise OSError(f"could not write {path}: use a .png or .jpg name")
    return write_bytes_atomic(path, encoded.tobytes())
