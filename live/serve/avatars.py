"""Which avatars a connection may pick: the server's own list, and photos uploaded to it.

The list is fixed at start (`serve.avatars`, else the bundled demo painting); nothing a browser sends can
name a file on the server. An upload is checked before any work is spent on it (size, then the file's
own signature: JPEG, PNG or WebP, then its pixel count), made into a warp avatar (a second or two, off
the event loop), saved under the user data dir by content hash (the same photo twice is one avatar) and
added to the list for every connection.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

from live.avatar.avatar_file import WARP_FORMAT, AvatarError, read_avatar_file
from live.io.sources import image_kind

MAX_PIXELS = 40_000_000     # a 40 MP photo decodes to 120 MB; anything larger is refused before decoding
DEMO_ID = "demo"
# What an upload's avatar file is made with; bumped when making a warp avatar keeps something new (2: its gaze
# table), so that avatars uploaded to an older version are made again from the photo instead of served without it.
UPLOAD_VERSION = 2


class UploadRefused(ValueError):
    """An upload that is not made into an avatar; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class AvatarChoice:
    id: str                  # what a connection asks for
    name: str                # what the page shows
    path: str | None         # the avatar file; None: the bundled demo painting
    kind: str                # "warp" or "stylegan2"
    uploaded: bool = False

    def public(self) -> dict:
        """What a browser is told: never the server's paths."""
        return {"id": self.id, "name": self.name, "kind": self.kind, "uploaded": self.uploaded}


class AvatarCatalogue:
    def __init__(self, paths: list[str], upload_dir: Path, max_upload_bytes: int, max_uploads: int = 50):
        self.upload_dir, self.max_upload_bytes = Path(upload_dir), int(max_upload_bytes)
        self.max_uploads = max(int(max_uploads), 0)
        self._lock = threading.Lock()
        self._choices: dict[str, AvatarChoice] = {}
        for path in paths:
            kind = "warp" if read_avatar_file(path)["format"] == WARP_FORMAT else "stylegan2"
            stem = Path(path).stem
            avatar_id = stem if stem not in self._choices else f"{stem}-{len(self._choices)}"
            self._choices[avatar_id] = AvatarChoice(avatar_id, stem, str(path), kind)
        if not self._choices:
            self._choices[DEMO_ID] = AvatarChoice(DEMO_ID, "demo painting (Vermeer)", None, "warp")
        self.default_id = next(iter(self._choices))
        for kept in self._kept_uploads():       # earlier uploads are listed again after a restart
            avatar_id = f"upload-{kept.stem[:8]}"
            self._choices[avatar_id] = AvatarChoice(avatar_id, "uploaded photo", str(kept), "warp", uploaded=True)

    def _kept_uploads(self) -> list[Path]:
        """Uploaded avatars on disk, oldest first; beyond max_uploads the oldest are removed, and so are those an
        older version made (without the photo they cannot be made again: the browser uploads it again)."""
        if not self.upload_dir.is_dir():
            return []
        older = [p for p in self.upload_dir.glob("*.pt") if (v := _upload_version(p.name)) and v < UPLOAD_VERSION]
        for stale in older:      # (files of a newer version, another server's half-written ones: left alone)
            stale.unlink(missing_ok=True)
        if older:
            logger.info("{} photo(s) uploaded to an older version removed: they are made again when uploaded",
                        len(older))
        kept = sorted(self.upload_dir.glob(_upload_name("*")), key=lambda p: p.stat().st_mtime)
        while len(kept) > self.max_uploads:
            kept.pop(0).unlink(missing_ok=True)
        return kept

    def list(self) -> list[AvatarChoice]:
        with self._lock:
            return list(self._choices.values())

    def get(self, avatar_id: str | None) -> AvatarChoice:
        with self._lock:
            if not avatar_id:
                return self._choices[self.default_id]
            if avatar_id not in self._choices:
                raise KeyError(f"no avatar {avatar_id!r} on this server; it offers {', '.join(self._choices)}")
            return self._choices[avatar_id]

    def check_upload(self, data: bytes) -> str:
        """The photo's format, or UploadRefused saying what is wrong (nothing decoded yet)."""
        if len(data) > self.max_upload_bytes:
            raise UploadRefused(f"the photo is {len(data) / 1e6:.1f} MB: this server takes up to "
                                f"{self.max_upload_bytes / 1e6:g} MB (serve.max_upload_mb)", 413)
        if not data:
            raise UploadRefused("the upload is empty: send a JPEG, PNG or WebP photo")
        kind = image_kind(data)
        if kind is None:
            raise UploadRefused("the upload is not a JPEG, PNG or WebP image: send a photo of a face", 415)
        return kind

    def add_upload(self, data: bytes, name: str = "") -> AvatarChoice:
        """A warp avatar from an uploaded photo (blocking: a second or two); AvatarError if it has no usable face."""
        from live.io.sources import SourceError
        from live.warp.create_avatar import create_warp_avatar
        from live.warp.warp_avatar import load_warp_avatar
        from models.atomic_files import write_bytes_atomic
        kind = self.check_upload(data)
        digest = hashlib.sha256(data).hexdigest()[:16]
        avatar_id = f"upload-{digest[:8]}"
        target = self.upload_dir / _upload_name(digest)
        shape = _image_size(data)
        if shape is None:
            raise UploadRefused(f"the {kind} file does not decode: it is damaged or cut short", 415)
        if shape[0] * shape[1] > MAX_PIXELS:
            raise UploadRefused(f"the photo is {shape[1]}x{shape[0]} px; this server takes up to "
                                f"{MAX_PIXELS / 1e6:.0f} megapixels", 413)
        if not _usable(target):         # none yet, or made by another version or damaged: made from this photo
            photo = self.upload_dir / f"{digest}.{kind.lower()}"
            write_bytes_atomic(photo, data)
            try:
                create_warp_avatar(photo).save(target)
            except SourceError:         # the header read, the pixels do not
                raise UploadRefused(f"the {kind} file does not decode: it is damaged or cut short", 415) from None
            except AvatarError as e:
                raise UploadRefused(str(e).replace(str(photo), "the photo"), 422) from None
            finally:
                photo.unlink(missing_ok=True)
            load_warp_avatar(target)        # what was saved reads back
        choice = AvatarChoice(avatar_id, (name or "uploaded photo")[:60], str(target), "warp", uploaded=True)
        with self._lock:
            self._choices[avatar_id] = choice
            kept = set(map(str, self._kept_uploads()))
            for old_id in [c.id for c in self._choices.values() if c.uploaded and c.path not in kept]:
                del self._choices[old_id]
        return choice


def _upload_name(digest: str) -> str:
    return f"{digest}.v{UPLOAD_VERSION}.pt"


def _upload_version(name: str) -> int | None:
    """The version an upload's avatar file was made by (1: named before versions were), None for any other file."""
    match = re.fullmatch(r"[0-9a-f]{16}(?:\.v(\d+))?\.pt", name)
    return None if match is None else int(match.group(1) or 1)


def _usable(avatar_file: Path) -> bool:
    """An uploaded photo's avatar kept from before, that still loads (else it is removed)."""
    from live.warp.warp_avatar import load_warp_avatar
    if not avatar_file.exists():
        return False
    try:
        load_warp_avatar(avatar_file)
    except AvatarError:
        avatar_file.unlink()
        return False
    return True


def _image_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from the header alone (Pillow reads no pixels here): a decompression bomb is refused
    before it is decoded. None: the header does not read."""
    import io

    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except Image.DecompressionBombError:       # Pillow's own refusal (over 179 MP): over our limit too
        return 1 << 16, 1 << 16
    except (UnidentifiedImageError, OSError, ValueError):
        return None
    return height, width
