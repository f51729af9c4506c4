"""Logging set-up: loguru to stderr (and optionally a file), one place for the format; and the native
libraries' chatter kept out of a normal run.

mediapipe (absl/glog inside TensorFlow Lite) and OpenCV print warnings from C++ straight to the
process's stderr, around our clean messages. `quiet_native_logs` puts a filter on file descriptor 2:
a thread passes every line through except those native informational/warning lines. `--verbose`
leaves stderr alone.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

from loguru import logger

# absl/glog lines (I/W with a date), TFLite's delegate notice, absl's pre-init notice, OpenCV's [ WARN ] lines,
# OpenCV's camera probing errors ("Camera index out of range": we say which camera and what to do), and FFmpeg's
# own lines ("[mov,mp4,... @ 0x...] moov atom not found": we say the file is damaged)
NATIVE_NOISE = re.compile(rb"^([IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ |INFO: Created TensorFlow Lite |"
                          rb"WARNING: All log messages before absl::InitializeLog|\[ (WARN|INFO):|"
                          rb"\[ERROR:\d+@[\d.]+\] global (obsensor|cap_)|\[[a-z0-9_,]+ @ 0x[0-9a-f]+\] )")
_filter: dict = {}


def setup_logging(level: str = "INFO", file: str | None = None) -> None:
    logger.remove()
    logger.add(sys.stderr, level=level.upper(),
               format="<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}")
    if file:
        logger.add(file, level="DEBUG", rotation="10 MB")


def quiet_native_logs() -> None:
    """From now on, native libraries' info and warning lines on stderr are dropped (once per process)."""
    if _filter or os.name != "posix":
        return
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump() -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                kept = b"".join(line + b"\n" for line in lines if not NATIVE_NOISE.match(line))
                if kept:
                    os.write(original, kept)
            if pending and not NATIVE_NOISE.match(pending):
                os.write(original, pending)

    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    _filter.update(original=original, thread=thread)
    atexit.register(_restore)


def _restore() -> None:
    """At exit: stderr back to the terminal, after the filter has passed on everything written so far."""
    if not _filter:
        return
    try:
        sys.stderr.flush()
    except Exception:
        pass
    os.dup2(_filter["original"], 2)          # closes the pipe's write end: the pump reads to the end
    _filter["thread"].join(timeout=2)
    _filter.clear()
