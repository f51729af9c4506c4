"""The registry of known weights (models/registry.yaml, plus the user's own registry.yaml).

An entry says what a file is (kind, format, architecture, framing), where to get it and, where
known, its size and sha256. `load_registry` validates every entry, so a typo in a user's
registry is reported by name rather than failing later in a download.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

SHIPPED = Path(__file__).with_name("registry.yaml")
KINDS = ("generator", "encoder", "directions", "identity", "metric")
FORMATS = {"generator": ("reference", "nvidia-pkl", "safetensors"), "encoder": ("e4e",), "directions": ("directions",),
           "identity": ("ir-se50",), "metric": ("torchscript",)}
FRAMINGS = ("voxceleb", "ffhq", "fixture")


class RegistryError(ValueError):
    """A registry file or entry that cannot be used; the message names it."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str
    description: str
    file: str
    format: str
    urls: tuple[str, ...] = ()
    source: str = ""
    resolution: int | None = None
    channel_multiplier: int | None = None
    framing: str | None = None
    size: int | None = None
    sha256: str | None = None
    extra: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, name: str, d: dict, origin: str) -> "ModelEntry":
        where = f"{origin}: entry {name!r}"
        if not isinstance(d, dict):
            raise RegistryError(f"{where} must be a mapping of fields")
        known = {f.name for f in fields(cls)} - {"name", "extra"}
        unknown = set(d) - known
        if unknown:
            raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(sorted(known))}")
        for required in ("kind", "description", "file", "format"):
            if not d.get(required):
                raise RegistryError(f"{where}: missing {required!r}")
        if d["kind"] not in KINDS:
            raise RegistryError(f"{where}: kind must be one of {', '.join(KINDS)}, got {d['kind']!r}")
        if d["format"] not in FORMATS[d["kind"]]:
            raise RegistryError(f"{where}: a {d['kind']} has format {' or '.join(FORMATS[d['kind']])}, "
                                f"got {d['format']!r}")
        if d.get("framing") is not None and d["framing"] not in FRAMINGS:
            raise RegistryError(f"{where}: framing must be one of {', '.join(FRAMINGS)}, got {d['framing']!r}")
        if Path(d["file"]).name != d["file"] or d["file"].startswith("."):
            raise RegistryError(f"{where}: file must be a plain file name, got {d['file']!r}")
        sha = d.get("sha256")
        if sha is not None and (len(str(sha)) != 64 or any(c not in "0123456789abcdef" for c in str(sha).lower())):
            raise RegistryError(f"{where}: sha256 must be 64 hex digits")
        urls = d.get("urls") or []
        if isinstance(urls, str) or not all(isinstance(u, str) and "://" in u for u in urls):
            raise RegistryError(f"{where}: urls must be a list of http(s) URLs")
        return cls(name=name, kind=d["kind"], description=str(d["description"]), file=d["file"], format=d["format"],
                   urls=tuple(urls), source=str(d.get("source", "")), resolution=d.get("resolution"),
                   channel_multiplier=d.get("channel_multiplier"), framing=d.get("framing"),
                   size=int(d["size"]) if d.get("size") else None, sha256=str(sha).lower() if sha else None)


def _read(path: Path) -> dict[str, ModelEntry]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise RegistryError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise RegistryError(f"{path}: expected a mapping of model names to entries")
    return {str(name): ModelEntry.from_dict(str(name), d, str(path)) for name, d in data.items()}


def load_registry(user: Path | None = None) -> dict[str, ModelEntry]:
    """The shipped registry with the entries of `user` (a registry.yaml, if it exists) merged over it."""
    entries = _read(SHIPPED)
    if user is not None and user.is_file():
        entries.update(_read(user))
    return entries
