"""Built engine files kept on disk between runs: where, under which key, and how many.

An exported or converted synthesis graph (ONNX, OpenVINO IR) is valid for exactly one set of
weights, one runtime version and one set of build settings, so all of those go into the key:
a file from another version is never read, it is rebuilt beside it. Files are written under a
temporary name and renamed, so an interrupted build leaves nothing that looks finished. Pivotal
tuning gives every avatar its own weights, so the folder keeps only the most recently used few.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from loguru import logger

from live.paths import cache_dir

KEEP_PER_KIND = 6   # a few avatars' engines; each is the generator's size (30-120 MB)


def engines_dir(configured: str | None) -> Path:
    return Path(configured) if configured else cache_dir() / "engines"


def artifact_key(parts: dict) -> str:
    """A short hash of everything the artefact depends on (JSON-serialisable values)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def touch(path: Path) -> None:
    """Mark as used now (the pruning below keeps the most recently used)."""
    try:
        os.utime(path)
    except OSError:
        pass


def prune(folder: Path, prefix: str, suffix: str, keep: int = KEEP_PER_KIND) -> list[Path]:
    """Delete all but the `keep` most recently used `prefix*suffix` files (and their sidecars:
    same stem, any suffix). Returns what was deleted."""
    files = sorted(folder.glob(f"{prefix}*{suffix}"), key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in files[keep:]:
        for sidecar in folder.glob(old.stem + ".*"):
            sidecar.unlink(missing_ok=True)
            removed.append(sidecar)
    if removed:
        logger.info("engine cache: removed {} old files from {}", len(removed), folder)
    return removed
