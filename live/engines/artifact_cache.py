"""Built engine files kept on disk between runs: where, under which key, and how many.

An exported or converted synthesis graph (ONNX, OpenVINO IR) is valid for exactly one set of
weights, one runtime version and one set of build settings, so all of those go into the key:
a file from another version is never read, it is rebuilt beside it. Files are written under a
temporary name and renamed, so an interrupted build leaves nothing that looks finished. Pivotal
tuning gives every avatar its own weights, so the folder keeps only the most recently used few.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

from loguru import logger

from live.paths import cache_dir
from models.atomic_files import is_partial

KEEP_PER_KIND = 6   # a few avatars' engines; each is the generator's size (30-120 MB)


def engines_dir(configured: str | None) -> Path:
    return Path(configured) if configured else cache_dir() / "engines"


@functools.cache
def graph_digest() -> str:
    """A hash of the source that defines the synthesis graph: a fix to the network makes old engine
    files stale by itself, with no version to remember to bump."""
    import live.engines.static_synthesis
    import models.layers
    import models.ops
    import models.stylegan2
    h = hashlib.sha256()
    for module in (models.stylegan2, models.layers, models.ops, live.engines.static_synthesis):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()[:16]


def artifact_key(parts: dict) -> str:
    """A short hash of everything the artefact depends on (JSON-serialisable values), the graph's
    source included."""
    parts = {**parts, "graph": graph_digest()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def touch(path: Path) -> None:
    """Mark as used now (the pruning below keeps the most recently used)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:      # removed meanwhile by another process
        return 0.0


def prune(folder: Path, prefix: str, suffix: str, keep: int = KEEP_PER_KIND) -> list[Path]:
    """Delete all but the `keep` most recently used `prefix*suffix` files (and their sidecars:
    same stem, any suffix). Never fails a build: a file another process removed or holds open
    (Windows) is left alone. Returns what was deleted."""
    # Temporary files of writers (models/atomic_files.py) are not engines: never ranked, never counted.
    files = sorted((f for f in folder.glob(f"{prefix}*{suffix}") if not is_partial(f)), key=_mtime,
                   reverse=True)
    removed = []
    for old in files[keep:]:
        for sidecar in folder.glob(old.stem + ".*"):
            try:
                sidecar.unlink(missing_ok=True)
                removed.append(sidecar)
            except OSError:
                pass
    if removed:
        logger.info("engine cache: removed {} old files from {}", len(removed), folder)
    return removed
