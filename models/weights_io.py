"""Reading and writing torch files safely: never unpickle code, never leave half a file.

`safe_torch_load` is the one place where a torch file is opened: `weights_only=True` (tensors,
plain containers and the few classes allow-listed by the caller), and every way a file can fail
(pickled code, truncation, not a zip) becomes the caller's error class with a message that says
what to do. `save_atomic` writes beside the target and renames, so an interrupted save never
replaces a good file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from models.errors import CheckpointError, WeightsError


def first_line(e: BaseException, limit: int = 300) -> str:
    text = str(e).strip().splitlines()
    return text[0][:limit] if text else type(e).__name__


def safe_torch_load(path: str | Path, error: type[WeightsError] = CheckpointError, expected: str = "",
                    allowed: tuple = (), mmap: bool = False) -> object:
    """torch.load with weights_only=True; any failure becomes `error` naming the file.

    expected: what the file should have been, appended to the message.
    allowed: extra classes the file may hold (e.g. argparse.Namespace for reference checkpoints).
    mmap: map the file instead of reading it (a 1.2 GB training checkpoint then costs only the
    pages of the tensors actually used).
    """
    path = Path(path)
    hint = f" Expected {expected}." if expected else ""
    if not path.is_file():
        raise error(f"{path}: no such file.{hint}")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        what = f" ({found.group(1)})" if found else f" ({first_line(e)})"
        raise error(f"{path}: refused to load, it holds pickled Python objects beyond tensors{what}; "
                    f"nothing in it was run.{hint}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as e:
        raise error(f"{path}: not a readable torch file, it may be truncated or corrupt ({first_line(e)}). "
                    f"Download or make it again.{hint}") from None


def safe_safetensors_load(path: str | Path, error: type[WeightsError], hint: str = "") -> tuple[dict, dict]:
    """(tensors, metadata) of a safetensors file; a file safetensors cannot read (truncated, foreign) raises
    `error` saying so, followed by `hint` (what the caller expected and how to make it)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as e:
        raise error(f"{path}: not a readable safetensors file, it may be truncated ({first_line(e)}). "
                    f"{hint}".rstrip()) from None


def save_atomic(obj: object, path: str | Path) -> Path:
    """torch.save to PATH.partial, then rename over PATH."""
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    torch.save(obj, tmp)
    tmp.replace(path)
    return path


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """A temporary path beside PATH (unique to this writer) to write to; on success it is flushed to disk
    and renamed over PATH, so PATH is never half-written; on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_npz_atomic(path: str | Path, **arrays) -> Path:
    """np.savez_compressed of the arrays to PATH, atomically (atomic_path)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)
    return Path(path)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_mismatch(expected: dict, got: dict, name=lambda k: k) -> str | None:
    """How two state dicts differ in keys and shapes, in words (the first few of each); None if they fit."""
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(expected) & set(got) if tuple(expected[k].shape) != tuple(got[k].shape))
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} tensors, e.g. {', '.join(map(name, missing[:3]))}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected tensors, e.g. {', '.join(map(name, unexpected[:3]))}")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} tensors of the wrong shape, e.g. {name(k)}: {list(got[k].shape)} "
                     f"where {list(expected[k].shape)} was expected")
    return "; ".join(parts) or None
