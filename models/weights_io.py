"""Reading and writing torch files safely: never unpickle code, never leave half a file.

`safe_torch_load` is the one place where a torch file is opened: `weights_only=True` (tensors,
plain containers and the few classes allow-listed by the caller), and every way a file can fail
(pickled code, truncation, not a zip) becomes the caller's error class with a message that says
what to do. Writing goes through models/atomic_files.py: an interrupted save never replaces a good file.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import torch

from models.errors import CheckpointError, WeightsError, first_line


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
    foreign = _foreign_file(path)
    if foreign:
        raise error(f"{path}: {foreign}, not a torch file.{hint}")
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))    # "Unsupported global: GLOBAL x", "unsupported GLOBAL x whose module"
        if found:
            raise error(f"{path}: refused to load, it holds pickled Python objects beyond tensors "
                        f"({found.group(1)}); nothing in it was run.{hint}") from None
        raise error(f"{path}: not a readable torch file ({_unpickler_reason(e)}); nothing in it was run. "
                    f"Download or make it again.{hint}") from None
    except Exception as e:  # truncated, corrupt, or a pickle whose contents the safe loader cannot place
        raise error(f"{path}: not a readable torch file, it may be truncated or corrupt ({first_line(e, 120)}). "
                    f"Download or make it again.{hint}") from None


ZIP_MAGIC, PICKLE_PROTOCOL = b"PK\x03\x04", 0x80


def _foreign_file(path: Path) -> str | None:
    """Why `path` cannot be a torch file judged by its first bytes (torch writes a zip archive; before 1.6, a
    pickle starting with its protocol byte), or None when it may be one."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        return f"cannot be read: {e.strerror or e}"
    if not head:
        return "it is empty"
    if head.startswith(ZIP_MAGIC) or head[0] == PICKLE_PROTOCOL:
        return None
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:   # text only if the one bad character is the last, cut at 64 bytes
        text = head[:e.start].decode("utf-8") if e.start >= len(head) - 3 else ""
    if text.strip() and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"it is text (it starts with {text.strip().splitlines()[0][:40]!r})"
    return "it is some other kind of file"


def _unpickler_reason(e: BaseException) -> str:
    """torch's own reason, without its advice to load with weights_only=False (which would run the file's code)."""
    for line in str(e).splitlines():
        if "Unpickler error" in line or "invalid load key" in line:
            return line.split("error:", 1)[-1].strip()[:160]
    return type(e).__name__


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
